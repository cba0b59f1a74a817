// What ctxfwd keeps per flow, through ordinary C++ containers that allocate from the
// flow's memory_resource: the sizes and times of its last 32 packets and a copy of its
// first packet's first 64 payload bytes. This is the per-flow work whose allocations
// the flow allocators serve (a deque node of 512 bytes every 32 packets, its map, the
// payload string).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory_resource>
#include <span>
#include <string>

namespace ctxfwd {

/// One packet of a flow: its frame length and when it was received (TSC).
struct PacketSample {
  std::uint64_t tsc = 0;
  std::uint32_t bytes = 0;
};

inline constexpr std::size_t kMaxSamples = 32;        ///< the deque keeps this many
inline constexpr std::size_t kPayloadCopyBytes = 64;  ///< of the first packet's payload

struct FlowRecord {
  /// Allocates (the deque's map and first node) from `r`: may throw std::bad_alloc.
  explicit FlowRecord(std::pmr::memory_resource* r) : samples(r), first_payload(r) {}

  /// The per-packet work. The first packet also copies its payload's first 64 bytes.
  /// May throw std::bad_alloc. A later packet's work is all or nothing: the record is
  /// then as it was (ctxfwd --on-flow-refusal keep goes on with it). A first packet's
  /// record is only fit to be dropped (ctxfwd ends the flow); its memory is the flow's.
  void on_packet(std::uint32_t bytes, std::uint64_t tsc, std::span<const std::byte> payload,
                 bool first) {
    if (first) {
      const std::size_t n = std::min(payload.size(), kPayloadCopyBytes);
      first_payload.assign(reinterpret_cast<const char*>(payload.data()), n);
    }
    // All or nothing (ctxfwd may keep a flow whose packet was refused): the push, the only
    // step that allocates, comes first. The count is kept here: a deque's size() is
    // computed from four iterators.
    samples.push_back(PacketSample{tsc, bytes});
    if (count == kMaxSamples)
      samples.pop_front();
    else
      ++count;
  }

  std::pmr::deque<PacketSample> samples;
  std::pmr::string first_payload;
  std::uint32_t count = 0;  ///< samples.size()
};

}  // namespace ctxfwd
