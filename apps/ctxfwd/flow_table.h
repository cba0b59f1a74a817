// One worker lcore's flow table: an rte_hash on the lcore's socket from the parser's
// ordered 5-tuple to one of max_flows fixed slots.
//
// Bound: at most max_flows flows live per lcore; a packet that would start one more flow
// is dropped and counted (flow_table_full), and the flows already in the table keep
// forwarding. We drop rather than evict the oldest: under a flood of new 5-tuples,
// eviction would throw out real flows' state to make room for flood flows that never send
// a second packet, and make every flood packet pay an eviction and an allocation. Idle
// flows still leave by the timeout, which makes room again. Memory is bounded by
// max_flows x the flow allocator's per-flow budget, plus the fixed slots and hash.
//
// A flow ends on a TCP FIN or RST (after that packet's work), on the idle timeout, or
// when its memory is refused. A TCP flow ended by FIN or RST is not released at once: it
// stays in the table, closed, for the linger time (conntrack's TIME_WAIT/CLOSE), so that
// the segments still in flight (the peer's FIN/ACK, data sent before the close, the RSTs
// a closed socket answers them with) are counted as late segments of that flow and
// forwarded, instead of each starting a new flow. A SYN without ACK on a closed flow is a
// new connection on a reused 5-tuple: the closed flow is released and a new flow starts
// (ctxgen's flow rule: every TCP flow it generates starts with a SYN). The closed flows
// are kept in a list in the order they closed, so the linger expiry takes them from its
// head exactly, and a new flow that finds the table full takes the slot of the oldest
// closed flow instead of being dropped. Its memory is released whole by the flow allocator; the
// FlowRecord's destructor is not run (its containers hold nothing but that memory, so
// reusing the slot without it is allowed, [basic.life]/5, and it is the point of a
// context: no per-object frees).
//
// Costs per packet: the burst's keys are looked up together (rte_hash_lookup_bulk_data
// overlaps the bucket and key cache misses of 32 packets), the slots found are
// prefetched, and a packet then touches only its own slot and its flow's memory. Idle
// flows are found by a sweep over the slots, a few per drain tick, so that no per-packet
// list has to be kept in order of last use (which would cost two more cache misses per
// packet, on the neighbours in the list): a flow expires between idle_timeout and
// 1.5 x idle_timeout after its last packet.
#pragma once

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>
#include <x86intrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include "counters.h"
#include "flow_allocator.h"
#include "flow_record.h"
#include "packet_parser.h"

namespace ctxfwd {

/// A TCP flow's state in one direction (FlowTable's Entry::dir).
enum class TcpDir : std::uint8_t { none, syn_sent, established, fin_sent, reset };

/// What became of a flow packet.
enum class FlowVerdict : std::uint8_t { forward, table_full, alloc_failed };

/// 40-byte key equality in five 8-byte words (rte_hash would call memcmp for a key length
/// it has no vector compare for). FlowKey is 8-byte aligned; rte_hash's key store too.
inline int flow_key_cmp(const void* a, const void* b, std::size_t) {
  static_assert(sizeof(FlowKey) == 40 && alignof(FlowKey) == 8);
  std::uint64_t x[5], y[5];
  std::memcpy(x, a, sizeof x);
  std::memcpy(y, b, sizeof y);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) != 0;
}

/// The flow key's hash: CRC32 of its five words, what rte_hash_crc computes with SSE4.2,
/// without its run-time choice of algorithm per call (the crc32 instructions inline,
/// no dispatch). Also the table's hash_func, so that the table and the bulk lookups agree.
inline std::uint32_t flow_key_hash(const void* key, std::uint32_t, std::uint32_t init) {
  std::uint64_t w[5];
  std::memcpy(w, key, sizeof w);
#if defined(__SSE4_2__)
  std::uint64_t h = init;
  for (std::uint64_t x : w)
    h = _mm_crc32_u64(h, x);
  return static_cast<std::uint32_t>(h);
#else
  return rte_hash_crc(w, sizeof w, init);
#endif
}

template <FlowAllocator A>
class FlowTable {
 public:
  struct Config {
    unsigned lcore_id = 0;
    int socket_id = 0;
    std::uint32_t max_flows = 0;
    std::uint64_t idle_cycles = 0;  ///< TSC cycles; 0: flows never expire
    /// TSC cycles a TCP flow ended by FIN/RST lingers, closed; 0: released at once (and
    /// the 5-tuple's next packet starts a new flow).
    std::uint64_t linger_cycles = 0;
    std::uint64_t sweep_cycles = 0;  ///< how often expire() is called (the drain tick)
    /// A later packet's refused work keeps the flow (as it was) and forwards the packet;
    /// false: the flow ends and the packet drops. A first packet's always ends it.
    bool keep_refused = false;
  };

  /// Burst lookups at most this many keys at once.
  static constexpr unsigned kMaxBurst = RTE_HASH_LOOKUP_BULK_MAX;

  FlowTable() = default;
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;
  ~FlowTable() { destroy(); }

  /// Creates the hash and the slots on the lcore's socket. Empty string, or the error.
  std::string init(const Config& cfg, A& alloc, LcoreCounters& counters) {
    cfg_ = cfg;
    alloc_ = &alloc;
    counters_ = &counters;
    const std::string where = "flow table of lcore " + std::to_string(cfg.lcore_id);
    const std::string name = "ctxfwd_ft_" + std::to_string(cfg.lcore_id);
    rte_hash_parameters p{};
    p.name = name.c_str();
    // rte_hash wants at least one bucket's worth; the slot count enforces max_flows.
    // Twice the slots: a cuckoo table near full moves keys on most inserts, and each
    // displacement is a chain of bucket reads and writes on the per-packet path.
    p.entries = std::max<std::uint32_t>(2 * cfg.max_flows, 16);
    p.key_len = sizeof(FlowKey);
    p.hash_func = flow_key_hash;
    p.socket_id = cfg.socket_id;
    // With the extendable bucket table every one of `entries` keys fits: a cuckoo table
    // without it may refuse a key before it is full, which would break the bound's
    // promise that max_flows flows are admitted.
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    hash_ = rte_hash_create(&p);
    if (hash_ == nullptr) return where + ": rte_hash_create: " + rte_strerror(rte_errno);
    rte_hash_set_cmp_func(hash_, flow_key_cmp);
    const std::size_t bytes = sizeof(Entry) * cfg.max_flows;
    entries_ = static_cast<Entry*>(
        rte_zmalloc_socket("ctxfwd_flows", bytes, RTE_CACHE_LINE_SIZE, cfg.socket_id));
    if (entries_ == nullptr)
      return where + ": no memory for " + std::to_string(cfg.max_flows) + " slots";
    for (std::uint32_t i = cfg.max_flows; i-- > 0;) {
      Entry* e = new (&entries_[i]) Entry{};
      e->next_free = free_;
      free_ = e;
    }
    // Every slot is visited once per half timeout: sweep_step slots per call of expire().
    if (cfg.idle_cycles != 0) {
      const std::uint64_t calls = std::max<std::uint64_t>(
          1, cfg.idle_cycles / 2 / std::max<std::uint64_t>(cfg.sweep_cycles, 1));
      sweep_step_ = static_cast<std::uint32_t>((cfg.max_flows + calls - 1) / calls);
    }
    return {};
  }

  /// The hash of `key` (computed once per packet: for the lookup, and for the insertion
  /// of a new flow).
  static hash_sig_t hash(const FlowKey& key) { return flow_key_hash(&key, sizeof key, 0); }

  /// Looks up the flow packets' keys (FlowKey*) of one burst together, with their hashes
  /// (n <= kMaxBurst). `out[i]` is a hint for on_packet(): the flow's slot as the table
  /// was before the burst.
  void lookup_burst(const void** keys, hash_sig_t* sigs, unsigned n, void** out) {
    if (n == 0) return;
    std::uint64_t hits = 0;
    rte_hash_lookup_with_hash_bulk_data(hash_, keys, sigs, n, &hits, out);
    for (unsigned i = 0; i < n; ++i) {
      if ((hits >> i & 1) == 0) {
        out[i] = nullptr;
        continue;
      }
      // The slot's first three lines: key, state, and the containers' heads.
      const auto* slot = static_cast<const char*>(out[i]);
      rte_prefetch0(slot);
      rte_prefetch0(slot + RTE_CACHE_LINE_SIZE);
      rte_prefetch0(slot + 2 * RTE_CACHE_LINE_SIZE);
    }
    adds_at_lookup_ = adds_;
  }

  /// Prefetches where the flow of `hint` (a lookup_burst answer) will write its next
  /// packet sample. Reads the slot, so call it once the slot's lines have had time to
  /// arrive. A stale hint is harmless: its slot still holds some flow's record or none.
  void prefetch(const void* hint) const {
    const auto* e = static_cast<const Entry*>(hint);
    if (e == nullptr || !e->live || e->ctx == nullptr) return;
    const auto& samples = e->record()->samples;
    if (!samples.empty()) rte_prefetch0(&samples.back() + 1);
  }

  /// A flow packet: finds or starts its flow and does the flow's per-packet work. `hint`
  /// is lookup_burst's answer for it. Flows started or ended earlier in the same burst
  /// make a hint stale: a slot hint is trusted only if the slot is live with this key
  /// (then it is this key's current flow, the table maps a key to one slot), a miss only
  /// if no flow was added since the lookup; otherwise the key is looked up again.
  FlowVerdict on_packet(const ParseResult& r, hash_sig_t sig, const std::byte* frame,
                        std::uint32_t len, std::uint64_t now, void* hint) {
    Entry* e = static_cast<Entry*>(hint);
    if (e != nullptr ? !e->live || flow_key_cmp(&e->key, &r.key, sizeof(FlowKey)) != 0
                     : adds_ != adds_at_lookup_) {
      void* data = nullptr;
      e = rte_hash_lookup_with_hash_data(hash_, &r.key, sig, &data) >= 0 ? static_cast<Entry*>(data)
                                                                         : nullptr;
    }
    if (e != nullptr && e->closing) {
      if (is_new_connection(r) || now - e->closed_tsc > cfg_.linger_cycles) {
        // A new SYN on the 5-tuple, or a closed flow the linger sweep has not reached yet.
        (is_new_connection(r) ? counters_->flows_reopened : counters_->linger_expired).add(1);
        end_flow(*e);
        e = nullptr;
      } else {
        track_directions(*e, r);
        counters_->late_segments.add(1);
        return FlowVerdict::forward;
      }
    }
    const bool first = e == nullptr;
    if (first) {
      e = start_flow(r.key, sig);
      if (e == nullptr) return FlowVerdict::table_full;
    }
    if (e->ctx == nullptr) return fail(*e);
    if (!work(*e, r, frame, len, now, first)) {
      if (first || !cfg_.keep_refused) return fail(*e);
      counters_->refusals_kept.add(1);  // the record is as it was (on_packet is all or nothing)
    }
    if (first) counters_->flows_created.add(1);
    e->last_tsc = now;
    if (r.key.proto == kIpProtoTcp) track_tcp(*e, r, now);
    return FlowVerdict::forward;
  }

  /// Called every sweep_cycles: releases the closed flows whose linger is over (from the
  /// head of the closed list: exact), visits the next few slots and ends the open flows
  /// idle for longer than the timeout. Cost: sweep_step slot reads, in address order.
  void expire(std::uint64_t now) {
    while (closed_head_ != nullptr && now - closed_head_->closed_tsc > cfg_.linger_cycles) {
      end_flow(*closed_head_);
      counters_->linger_expired.add(1);
    }
    if (sweep_step_ == 0) return;
    for (std::uint32_t i = 0; i < sweep_step_; ++i) {
      Entry& e = entries_[sweep_];
      if (++sweep_ == cfg_.max_flows) sweep_ = 0;
      if (e.live && !e.closing && now - e.last_tsc > cfg_.idle_cycles) {
        end_flow(e);
        counters_->flows_expired.add(1);
      }
    }
  }

  /// Releases every flow, open or closed (at stop).
  void release_all() {
    for (std::uint32_t i = 0; entries_ != nullptr && i < cfg_.max_flows; ++i) {
      if (!entries_[i].live) continue;
      const bool closed = entries_[i].closing;
      end_flow(entries_[i]);
      (closed ? counters_->closed_released_at_stop : counters_->flows_released_at_stop).add(1);
    }
  }

  /// Open flows in the table (walks the slots: for checks).
  std::uint32_t live_flows() const {
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; entries_ != nullptr && i < cfg_.max_flows; ++i)
      n += entries_[i].live && !entries_[i].closing ? 1 : 0;
    return n;
  }

 private:
  // Hot fields first: the key compare, the state and the record's containers share the
  // slot's first three cache lines.
  struct alignas(RTE_CACHE_LINE_SIZE) Entry {
    FlowKey key{};
    hash_sig_t sig = 0;
    bool live = false;
    bool closing = false;  ///< ended by FIN/RST, lingering on the closed list
    /// TCP state per direction (TcpDir): [0] from the key's lo endpoint, [1] from hi.
    std::array<std::uint8_t, 2> dir{};
    std::uint64_t last_tsc = 0;
    typename A::Context* ctx = nullptr;
    Entry* next_free = nullptr;
    std::uint64_t closed_tsc = 0;  ///< when the FIN/RST that ended it arrived
    Entry* closed_prev = nullptr;  ///< the closed list, oldest first
    Entry* closed_next = nullptr;
    alignas(FlowRecord) std::byte record_storage[sizeof(FlowRecord)];
    FlowRecord* record() { return std::launder(reinterpret_cast<FlowRecord*>(record_storage)); }
    const FlowRecord* record() const {
      return std::launder(reinterpret_cast<const FlowRecord*>(record_storage));
    }
  };

  // A slot and a context for a new flow, in the hash; nullptr when the table is full.
  // A full table gives up its oldest closed flow first: a closed flow only waits for late
  // segments, an open one would be dropped. e->ctx is nullptr when the flow allocator had
  // no context (the caller fails the flow).
  Entry* start_flow(const FlowKey& key, hash_sig_t sig) {
    if (free_ == nullptr && closed_head_ != nullptr) {
      end_flow(*closed_head_);
      counters_->closed_reclaimed.add(1);
    }
    if (free_ == nullptr) {
      counters_->drop(Drop::flow_table_full);
      return nullptr;
    }
    Entry* e = free_;
    if (rte_hash_add_key_with_hash_data(hash_, &key, sig, e) < 0) {
      counters_->drop(Drop::flow_table_full);
      return nullptr;
    }
    ++adds_;
    free_ = e->next_free;
    e->key = key;
    e->sig = sig;
    e->live = true;
    e->closing = false;
    e->dir = {};
    e->ctx = alloc_->acquire();
    counters_->flows_live.add(1);
    return e;
  }

  // The flow's per-packet work inside its context's scope; false when memory was refused.
  bool work(Entry& e, const ParseResult& r, const std::byte* frame, std::uint32_t len,
            std::uint64_t now, bool first) {
    typename A::Scope scope(*alloc_, *e.ctx);
    try {
      if (first) new (e.record_storage) FlowRecord(alloc_->resource(*e.ctx));
      e.record()->on_packet(len, now, r.payload(frame), first);
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }

  // The flow could not get memory: it ends and the packet is dropped.
  FlowVerdict fail(Entry& e) {
    end_flow(e);
    counters_->flows_failed.add(1);
    counters_->drop(Drop::flow_alloc_failed);
    return FlowVerdict::alloc_failed;
  }

  // A SYN without ACK: a client opening a connection (on a closed flow: a new one).
  static bool is_new_connection(const ParseResult& r) {
    return r.key.proto == kIpProtoTcp && (r.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn;
  }

  // conntrack's view of a TCP flow, per direction: a SYN opens the direction, its first
  // ACK without SYN after that makes it established, a FIN closes it (FIN-wait until the
  // other direction's FIN too: closing), a RST resets both.
  static void track_directions(Entry& e, const ParseResult& r) {
    std::uint8_t& d = e.dir[r.reversed ? 1 : 0];
    const std::uint8_t f = r.tcp_flags;
    if ((f & kTcpRst) != 0) {
      e.dir = {static_cast<std::uint8_t>(TcpDir::reset), static_cast<std::uint8_t>(TcpDir::reset)};
    } else if ((f & kTcpFin) != 0) {
      d = static_cast<std::uint8_t>(TcpDir::fin_sent);
    } else if ((f & kTcpSyn) != 0) {
      d = static_cast<std::uint8_t>(TcpDir::syn_sent);
    } else if ((f & kTcpAck) != 0 && d == static_cast<std::uint8_t>(TcpDir::syn_sent)) {
      d = static_cast<std::uint8_t>(TcpDir::established);
    }
  }

  // After an open TCP flow's packet work: its directions' state, and the end. The flow is
  // open until the first FIN or RST of either direction ends it, once: what follows (the
  // peer's FIN/ACK, the last ACK, RSTs) are late segments of the closed flow.
  void track_tcp(Entry& e, const ParseResult& r, std::uint64_t now) {
    track_directions(e, r);
    const std::uint8_t f = r.tcp_flags;
    if ((f & (kTcpFin | kTcpRst)) == 0) return;
    counters_->flows_ended.add(1);
    counters_->flows_ended_by[(f & kTcpRst) != 0 ? 1 : 0].add(1);
    if (cfg_.linger_cycles == 0) {
      end_flow(e);
      return;
    }
    // Open -> closed: off the open count, onto the tail of the closed list.
    e.closing = true;
    e.closed_tsc = now;
    e.closed_prev = closed_tail_;
    e.closed_next = nullptr;
    (closed_tail_ != nullptr ? closed_tail_->closed_next : closed_head_) = &e;
    closed_tail_ = &e;
    counters_->flows_live.sub(1);
    counters_->flows_closing.add(1);
  }

  void end_flow(Entry& e) {
    rte_hash_del_key_with_hash(hash_, &e.key, e.sig);
    if (e.ctx != nullptr) alloc_->release(*e.ctx);
    e.ctx = nullptr;
    e.live = false;
    if (e.closing) {
      (e.closed_prev != nullptr ? e.closed_prev->closed_next : closed_head_) = e.closed_next;
      (e.closed_next != nullptr ? e.closed_next->closed_prev : closed_tail_) = e.closed_prev;
      e.closing = false;
      counters_->flows_closing.sub(1);
    } else {
      counters_->flows_live.sub(1);
    }
    e.next_free = free_;
    free_ = &e;
  }

  void destroy() {
    release_all();
    rte_free(entries_);
    entries_ = nullptr;
    rte_hash_free(hash_);
    hash_ = nullptr;
  }

  Config cfg_{};
  A* alloc_ = nullptr;
  LcoreCounters* counters_ = nullptr;
  rte_hash* hash_ = nullptr;
  Entry* entries_ = nullptr;
  Entry* free_ = nullptr;
  Entry* closed_head_ = nullptr;  // the closed flows, oldest first
  Entry* closed_tail_ = nullptr;
  std::uint64_t adds_ = 0;            // flows added so far
  std::uint64_t adds_at_lookup_ = 0;  // adds_ when the last burst was looked up
  std::uint32_t sweep_ = 0;           // next slot the sweep visits
  std::uint32_t sweep_step_ = 0;      // slots per expire() call; 0: no timeout
};

}  // namespace ctxfwd
