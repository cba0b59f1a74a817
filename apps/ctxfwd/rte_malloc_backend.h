// The "rte_malloc" choice: DPDK's heap on the owner lcore's socket. When that socket's
// heap is empty the request is retried on any socket and counted as a fallback (remote
// memory is slower but keeps the flow). rte_malloc takes the heap's spinlock on every
// call: that, and its best-fit search, is what this choice costs per block.
#pragma once

#include <rte_malloc.h>
#include <rte_memory.h>

#include <cstddef>
#include <string_view>

#include "tracked_flow_allocator.h"

namespace ctxfwd {

struct RteMallocBackend {
  static constexpr std::string_view kName = "rte_malloc";
  void bind(int socket, FlowAllocCounters* counters) noexcept {
    socket_ = socket;
    counters_ = counters;
  }
  void* allocate(std::size_t n, std::size_t align) noexcept {
    void* p = rte_malloc_socket("ctxfwd_flow", n, static_cast<unsigned>(align), socket_);
    if (p == nullptr && socket_ != SOCKET_ID_ANY) {
      p = rte_malloc_socket("ctxfwd_flow", n, static_cast<unsigned>(align), SOCKET_ID_ANY);
      if (p != nullptr) counters_->fallbacks.add(1);
    }
    return p;
  }
  void free(void* p, std::size_t, std::size_t) noexcept { rte_free(p); }

 private:
  int socket_ = SOCKET_ID_ANY;
  FlowAllocCounters* counters_ = nullptr;
};
static_assert(FlowMemoryBackend<RteMallocBackend>);

/// The "rte_malloc" choice.
using RteMallocFlowAllocator = TrackedFlowAllocator<RteMallocBackend>;
static_assert(FlowAllocator<RteMallocFlowAllocator>);

}  // namespace ctxfwd
