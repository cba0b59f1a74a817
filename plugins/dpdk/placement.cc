// lcore_placement / socket_placement: where the heaps' regions are, page by page, as the
// kernel reports it (move_pages with no target nodes only reads the status).
#include <numaif.h>

#include <cerrno>
#include <cstddef>

#include "ctxalloc/dpdk/lcore.h"
#include "detail/lcore_heaps.h"

namespace ctxalloc::dpdk {
namespace {

int place(const detail::SegmentRegion& region, unsigned node, Placement* out) noexcept {
  if (out == nullptr) return -EINVAL;
  *out = Placement{};
  out->node = node;
  if (!region.reserved()) return -ENODEV;
  const std::size_t stride = region.page_size() != 0 ? region.page_size() : 4096;
  out->page_size = stride;
  out->pages = region.bytes() / stride;
  constexpr std::size_t kBatch = 512;
  void* pages[kBatch];
  int status[kBatch];
  for (std::size_t first = 0; first < out->pages; first += kBatch) {
    const std::size_t n = out->pages - first < kBatch ? out->pages - first : kBatch;
    for (std::size_t i = 0; i < n; ++i) {
      pages[i] = region.base() + (first + i) * stride;
      status[i] = -ENOENT;
    }
    if (::move_pages(0, n, pages, nullptr, status, 0) != 0) {
      const int e = errno;
      *out = Placement{};
      out->node = node;
      return -e;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (status[i] < 0) {
        ++out->absent_pages;
      } else if (static_cast<unsigned>(status[i]) == node) {
        ++out->local_pages;
      } else {
        ++out->remote_pages;
        if (out->remote_node < 0) out->remote_node = status[i];
      }
    }
  }
  return 0;
}

}  // namespace

int lcore_placement(unsigned lcore_id, Placement* out) noexcept {
  const detail::LcoreHeap* h = detail::heap_of_lcore(lcore_id);
  if (h == nullptr) {
    if (out != nullptr) *out = Placement{};
    return -ENODEV;
  }
  return place(h->region, h->socket, out);
}

int socket_placement(unsigned socket_id, Placement* out) noexcept {
  const detail::SocketHeap* s =
      socket_id < kMaxSockets
          ? detail::lcore_runtime().sockets[socket_id].load(std::memory_order_acquire)
          : nullptr;
  if (s == nullptr) {
    if (out != nullptr) *out = Placement{};
    return -ENODEV;
  }
  return place(s->region, s->socket, out);
}

}  // namespace ctxalloc::dpdk
