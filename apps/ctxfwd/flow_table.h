// One worker lcore's flow table: an rte_hash on the lcore's socket from the parser's
// ordered 5-tuple to a fixed slot, max_flows slots, and a list of the flows in order of
// their last packet, so that idle flows are found at its head in O(1) each.
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
// when its memory is refused. Its memory is released whole by the flow allocator; the
// FlowRecord's destructor is not run (its containers hold nothing but that memory, so
// reusing the slot without it is allowed, [basic.life]/5, and it is the point of a
// context: no per-object frees).
#pragma once

#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

#include "counters.h"
#include "flow_allocator.h"
#include "flow_record.h"
#include "packet_parser.h"

namespace ctxfwd {

/// What became of a flow packet.
enum class FlowVerdict : std::uint8_t { forward, table_full, alloc_failed };

template <FlowAllocator A>
class FlowTable {
 public:
  struct Config {
    unsigned lcore_id = 0;
    int socket_id = 0;
    std::uint32_t max_flows = 0;
    std::uint64_t idle_cycles = 0;  ///< TSC cycles; 0: flows never expire
  };

  FlowTable() = default;
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;
  ~FlowTable() { destroy(); }

  /// Creates the hash and the slots on the lcore's socket. Empty string, or the error.
  std::string init(const Config& cfg, A& alloc, LcoreCounters& counters) {
    cfg_ = cfg;
    alloc_ = &alloc;
    counters_ = &counters;
    const std::string name = "ctxfwd_ft_" + std::to_string(cfg.lcore_id);
    rte_hash_parameters p{};
    p.name = name.c_str();
    // rte_hash wants at least one bucket's worth; the slot count enforces max_flows.
    p.entries = std::max<std::uint32_t>(cfg.max_flows, 16);
    p.key_len = sizeof(FlowKey);
    p.hash_func = rte_hash_crc;
    p.socket_id = cfg.socket_id;
    // With the extendable bucket table every one of `entries` keys fits: a cuckoo table
    // without it may refuse a key before it is full, which would break the bound's
    // promise that max_flows flows are admitted.
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
    hash_ = rte_hash_create(&p);
    if (hash_ == nullptr)
      return "flow table of lcore " + std::to_string(cfg.lcore_id) +
             ": rte_hash_create: " + rte_strerror(rte_errno);
    const std::size_t bytes = sizeof(Entry) * cfg.max_flows;
    entries_ = static_cast<Entry*>(
        rte_zmalloc_socket("ctxfwd_flows", bytes, RTE_CACHE_LINE_SIZE, cfg.socket_id));
    if (entries_ == nullptr)
      return "flow table of lcore " + std::to_string(cfg.lcore_id) + ": no memory for " +
             std::to_string(cfg.max_flows) + " slots";
    for (std::uint32_t i = cfg.max_flows; i-- > 0;) {
      entries_[i].lru_next = free_;
      free_ = &entries_[i];
    }
    lru_.lru_prev = lru_.lru_next = &lru_;
    return {};
  }

  /// A flow packet: finds or starts its flow and does the flow's per-packet work.
  FlowVerdict on_packet(const ParseResult& r, const std::byte* frame, std::uint32_t len,
                        std::uint64_t now) {
    const hash_sig_t sig = rte_hash_hash(hash_, &r.key);
    void* data = nullptr;
    Entry* e = nullptr;
    if (rte_hash_lookup_with_hash_data(hash_, &r.key, sig, &data) >= 0) {
      e = static_cast<Entry*>(data);
      if (!work(*e, r, frame, len, now, false)) return fail(*e);
      lru_unlink(*e);
    } else {
      e = start_flow(r.key, sig);
      if (e == nullptr) return FlowVerdict::table_full;
      if (e->ctx == nullptr || !work(*e, r, frame, len, now, true)) return fail(*e);
      counters_->flows_created.add(1);
    }
    e->last_tsc = now;
    lru_append(*e);
    if (r.ends_flow()) {
      end_flow(*e);
      counters_->flows_ended.add(1);
    }
    return FlowVerdict::forward;
  }

  /// Ends flows idle for longer than the timeout, at most `budget` of them (so that one
  /// call never stalls the lcore for long). Cost when none is due: one compare.
  void expire(std::uint64_t now, unsigned budget) {
    if (cfg_.idle_cycles == 0) return;
    while (budget-- > 0 && lru_.lru_next != &lru_) {
      Entry& oldest = *lru_.lru_next;
      if (now - oldest.last_tsc <= cfg_.idle_cycles) return;
      end_flow(oldest);
      counters_->flows_expired.add(1);
    }
  }

  /// Releases every live flow (at stop).
  void release_all() {
    while (lru_.lru_next != &lru_) {
      end_flow(*lru_.lru_next);
      counters_->flows_released_at_stop.add(1);
    }
  }

  /// Flows in the table (walks the list: for checks).
  std::uint32_t live_flows() const {
    std::uint32_t n = 0;
    for (const Entry* e = lru_.lru_next; e != &lru_; e = e->lru_next)
      ++n;
    return n;
  }

 private:
  struct Entry {
    FlowKey key{};
    hash_sig_t sig = 0;
    Entry* lru_prev = nullptr;
    Entry* lru_next = nullptr;  // also the free list's link
    std::uint64_t last_tsc = 0;
    typename A::Context* ctx = nullptr;
    FlowRecord* record = nullptr;
    alignas(FlowRecord) std::byte record_storage[sizeof(FlowRecord)];
  };

  // A slot and a context for a new flow, in the hash; nullptr when the table is full.
  // e->ctx is nullptr when the flow allocator had no context (the caller fails the flow).
  Entry* start_flow(const FlowKey& key, hash_sig_t sig) {
    if (free_ == nullptr) {
      counters_->drop(Drop::flow_table_full);
      return nullptr;
    }
    Entry* e = free_;
    if (rte_hash_add_key_with_hash_data(hash_, &key, sig, e) < 0) {
      counters_->drop(Drop::flow_table_full);
      return nullptr;
    }
    free_ = e->lru_next;
    e->key = key;
    e->sig = sig;
    e->record = nullptr;
    e->ctx = alloc_->acquire();
    counters_->flows_live.add(1);
    return e;
  }

  // The flow's per-packet work inside its context's scope; false when memory was refused.
  bool work(Entry& e, const ParseResult& r, const std::byte* frame, std::uint32_t len,
            std::uint64_t now, bool first) {
    typename A::Scope scope(*alloc_, *e.ctx);
    try {
      if (first) e.record = new (e.record_storage) FlowRecord(alloc_->resource(*e.ctx));
      e.record->on_packet(len, now, r.payload(frame), first);
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }

  // The flow could not get memory: it ends and the packet is dropped.
  FlowVerdict fail(Entry& e) {
    if (e.lru_prev != nullptr) lru_unlink(e);
    end_flow_untracked(e);
    counters_->flows_failed.add(1);
    counters_->drop(Drop::flow_alloc_failed);
    return FlowVerdict::alloc_failed;
  }

  void end_flow(Entry& e) {
    lru_unlink(e);
    end_flow_untracked(e);
  }

  // Everything but the LRU list: hash, memory, slot.
  void end_flow_untracked(Entry& e) {
    rte_hash_del_key_with_hash(hash_, &e.key, e.sig);
    if (e.ctx != nullptr) alloc_->release(*e.ctx);
    e.ctx = nullptr;
    e.record = nullptr;
    e.lru_prev = nullptr;
    e.lru_next = free_;
    free_ = &e;
    counters_->flows_live.sub(1);
  }

  void lru_unlink(Entry& e) {
    e.lru_prev->lru_next = e.lru_next;
    e.lru_next->lru_prev = e.lru_prev;
    e.lru_prev = e.lru_next = nullptr;
  }
  void lru_append(Entry& e) {
    e.lru_prev = lru_.lru_prev;
    e.lru_next = &lru_;
    lru_.lru_prev->lru_next = &e;
    lru_.lru_prev = &e;
  }

  void destroy() {
    if (entries_ != nullptr) release_all();
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
  Entry lru_{};  // sentinel: lru_.lru_next is the flow idle longest
};

}  // namespace ctxfwd
