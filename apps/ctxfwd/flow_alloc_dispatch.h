// The one place where --flow-alloc becomes a type: the worker loops are instantiated per
// FlowAllocator, so the per-packet path calls its allocator directly. To add a choice,
// write a class that satisfies FlowAllocator (flow_allocator.h) and add its case here.
#pragma once

#include <string>

#include "options.h"
#include "rte_malloc_backend.h"
#include "tracked_flow_allocator.h"

namespace ctxfwd {

/// Empty when `kind` can run in this build, else why not.
inline std::string flow_alloc_unavailable(FlowAllocKind kind) {
  if (kind == FlowAllocKind::ctxalloc)
    return "--flow-alloc ctxalloc: not yet available in this build (the ctxalloc flow "
           "contexts arrive with the per-lcore allocators, issues 5 and 8); use rte_malloc "
           "or malloc";
  return {};
}

/// Calls `f.template operator()<A>()` with the FlowAllocator type of `kind`; returns
/// flow_alloc_unavailable(kind) without calling it when there is none.
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
      break;
  }
  return flow_alloc_unavailable(kind);
}

}  // namespace ctxfwd
