// The contract between ctxgen's TCP payloads and ctxfwd's reassembly check: how a TCP
// flow's two byte streams are digested and how the digests of many flows add up to one
// number per run, so that a generator that writes 10^6 flows and a forwarder that
// reassembles them on several lcores can compare without a per-flow list.
//
// What the generator promises for every TCP flow it marks as stream-checked:
//   - each direction starts with a SYN (client SYN, server SYN|ACK) that carries the
//     direction's initial sequence number and no payload; SYNs are never reordered,
//     lost or repeated, and no payload of a direction is sent before its SYN;
//   - payload bytes of a direction are the stream [ISN + 1, ISN + 1 + bytes); a segment may
//     arrive out of order, be withheld and sent later (loss and retransmission), repeat bytes
//     already sent (duplicate) or overlap them partly, but it never carries bytes that differ
//     from the stream's bytes at the same offset, and no segment ends more than
//     kMaxOutOfOrderBytes past the first byte the receiver is still missing;
//   - the flow's FIN or RST (if it has one) is its last packet, after every data segment of
//     both directions (the flow rule of apps/ctxgen/generator.h is unchanged).
// What the reassembler promises: it feeds each direction's bytes to the digest in stream
// order, exactly once each, and finishes a flow when it ends (FIN, RST, idle timeout, or the
// end of the run for a flow still open), adding flow_stream_term() to its total.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ctxproto {

/// Out-of-order bytes a receiver must be able to hold per direction for the generator's
/// traffic to reassemble completely (see the promise above).
inline constexpr std::uint32_t kMaxOutOfOrderBytes = 32 * 1024;

/// FNV-1a (64 bit) over a direction's payload bytes in stream order, and their count.
struct StreamDigest {
  std::uint64_t hash = 14695981039346656037ull;
  std::uint64_t bytes = 0;

  void update(std::span<const std::byte> data) noexcept {
    std::uint64_t h = hash;
    for (std::byte b : data) {
      h ^= static_cast<std::uint8_t>(b);
      h *= 1099511628211ull;
    }
    hash = h;
    bytes += data.size();
  }
};

/// splitmix64's finalizer: spreads a word so that a sum of terms does not cancel.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/// One flow's contribution to a run's `stream_digest_sum`: the sum (mod 2^64) of this term
/// over all stream-checked flows does not depend on the order flows finish in, nor on which
/// lcore finished them.
constexpr std::uint64_t flow_stream_term(const StreamDigest& client,
                                         const StreamDigest& server) noexcept {
  return mix64(client.hash ^ mix64(server.hash + 0x9e3779b97f4a7c15ull) ^ (client.bytes << 1) ^
               (server.bytes << 33));
}

}  // namespace ctxproto
