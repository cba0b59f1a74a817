// The one place where --flow-alloc becomes a type: the worker loops are instantiated per
// FlowAllocator, so the per-packet path calls its allocator directly. To add a choice,
// write a class that satisfies FlowAllocator (flow_allocator.h) and add its case here.
#pragma once

#include <string>

#include "ctxalloc_flow_allocator.h"
#include "options.h"
#include "rte_malloc_backend.h"
#include "tracked_flow_allocator.h"

namespace ctxfwd {

/// Calls `f.template operator()<A>()` with the FlowAllocator type of `kind`; returns
/// why not without calling it when there is none.
template <class F>
std::string with_flow_allocator(FlowAllocKind kind, F&& f) {
  switch (kind) {
    case FlowAllocKind::malloc:
      f.template operator()<MallocFlowAllocator>();
      return {};
    case FlowAllocKind::rte_malloc:
      f.template operator()<RteMallocFlowAllocator>();
      return {};
    case FlowAllocKind::ctxalloc:
      f.template operator()<CtxallocFlowAllocator>();
      return {};
  }
  return "unknown --flow-alloc";
}

}  // namespace ctxfwd
