// The "ctxalloc" choice: a flow's memory is a ctxalloc flow context made by the DPDK
// plugin's per-lcore layer (ctxalloc/dpdk/lcore.h) on the lcore's NUMA-local memory,
// of the kind the configuration's [flows] section names: a growing context (the
// default), or a bump, bit set or tree over one block of the lcore's arena. While a
// packet of the flow is processed the context is the thread's current allocator (a
// ContextScope: a few stores), so the flow's std::pmr containers, through
// current_resource(), allocate from it with no lock and no list; when the flow ends
// release_flow_context() drops everything at once, blocks spilled to the lcore's thread
// heap or the socket's global heap, and a growing context's large blocks, included.
// Pipeline records come from the lcore's thread heap; the tx lcore's frees go back to it
// in batches.
//
// Accounting (FlowAllocCounters): a flow holds its context's block (a fixed kind's
// block, a growing context's first chunk: lcore_figures().context_bytes) from acquire to
// release (that is what bytes_in_use counts for it), records their size; fallbacks are
// the contexts' spills, failures the contexts and records refused. The plugin keeps the
// exact figures per lcore (ctxalloc::dpdk::lcore_figures, telemetry /ctxalloc/lcore).
#pragma once

#include <pthread.h>

#include <cerrno>
#include <cstring>
#include <memory_resource>
#include <string>
#include <string_view>

#include "ctxalloc/adaptors/current_resource.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/dpdk/lcore.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/switchable.h"
#include "flow_allocator.h"

namespace ctxfwd {

class CtxallocFlowAllocator {
 public:
  static constexpr std::string_view kName = "ctxalloc";
  using Context = ctxalloc::Context;

  /// The flow's context is current while the scope lives (mode and context saved and
  /// restored).
  class Scope {
   public:
    Scope(CtxallocFlowAllocator&, Context& c) noexcept : scope_(c) {}
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ctxalloc::ContextScope scope_;
  };

  CtxallocFlowAllocator() = default;
  CtxallocFlowAllocator(const CtxallocFlowAllocator&) = delete;
  CtxallocFlowAllocator& operator=(const CtxallocFlowAllocator&) = delete;
  /// On the lcore at its end (every worker has one, a tx-only lcore too): this thread's
  /// batched frees of other lcores' blocks (a tx lcore's frees of pipeline records) go
  /// back to their owners now, before the per-lcore tear-down checks what is in use.
  ~CtxallocFlowAllocator() { ctxalloc::flush(); }

  /// Binds the calling lcore to its heap (ctxalloc::dpdk::setup() ran on the main lcore).
  std::string init(const FlowAllocConfig& cfg) {
    if (cfg.counters == nullptr) return std::string(kName) + ": bad configuration";
    if (!ctxalloc::dpdk::is_set_up())
      return std::string(kName) + ": the per-lcore allocators are not set up";
    if (int rc = ctxalloc::dpdk::bind_lcore(); rc != 0)
      return std::string(kName) + ": lcore " + std::to_string(cfg.lcore_id) +
             " cannot use its heap: " + std::strerror(-rc);
    const ctxalloc::dpdk::LcoreFigures f = ctxalloc::dpdk::lcore_figures(cfg.lcore_id);
    counters_ = cfg.counters;
    owner_ = pthread_self();
    context_bytes_ = f.context_bytes;
    counters_->metadata_bytes.set(f.region_bytes);
    return {};
  }

  Context* acquire() noexcept {
    Context* c = ctxalloc::dpdk::make_flow_context();
    if (c == nullptr) [[unlikely]] {
      counters_->failures.add(1);
      return nullptr;
    }
    counters_->contexts_live.add(1);
    counters_->contexts_acquired.add(1);
    counters_->on_allocate(context_bytes_);
    return c;
  }

  /// The current allocator's resource: inside a Scope, the flow's context.
  std::pmr::memory_resource* resource(Context&) noexcept { return ctxalloc::current_resource(); }

  void release(Context& c) noexcept {
    const std::uint64_t spills = c.spill_count();
    const std::uint64_t spill_failures = c.spill_failure_count();
    if (ctxalloc::dpdk::release_flow_context(&c) != 0) [[unlikely]] {
      counters_->misuses.add(1);  // reported by the plugin
      return;
    }
    counters_->fallbacks.add(spills);
    counters_->failures.add(spill_failures);
    counters_->contexts_live.sub(1);
    counters_->on_free(context_bytes_);
  }

  /// From the lcore's thread heap, whatever context is current.
  void* allocate_record(std::size_t n) noexcept {
    ctxalloc::ModeScope thread(ctxalloc::Mode::thread);
    return counters_->on_record(ctxalloc::allocate(n), n);
  }

  /// From any lcore: the block goes back to the owner's heap (batched when remote).
  void free_record(void* p, std::size_t n) noexcept {
    if (p == nullptr) return;
    counters_->on_record_free(owner_, n);
    ctxalloc::deallocate(p);
  }

 private:
  FlowAllocCounters* counters_ = nullptr;
  pthread_t owner_{};
  std::size_t context_bytes_ = 0;
};
static_assert(FlowAllocator<CtxallocFlowAllocator>);

}  // namespace ctxfwd
