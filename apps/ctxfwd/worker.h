// The worker lcore loops, for one FlowAllocator type (the --flow-alloc choice is made
// once, at launch, so the per-packet path calls the allocator without indirection).
//   forward      rx burst -> parse -> flow table (per-flow work in the flow's context) ->
//                MAC rewrite -> tx buffer; run to completion, as l2fwd.
//   pipeline_rx  the same up to the flow work, then one record per packet from the
//                lcore's flow allocator onto an rte_ring;
//   pipeline_tx  records off the ring -> MAC rewrite -> tx buffer -> the record is freed
//                here, on another lcore than the one that allocated it.
// Each lcore builds its flow allocator and flow table on its own thread, on its own
// socket, and tears them down there.
#pragma once

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "app.h"
#include "flow_table.h"
#include "packet_parser.h"

namespace ctxfwd {

/// Tx buffers are flushed and the idle sweep advances this often (l2fwd drains every
/// 100 us).
inline constexpr std::uint64_t kDrainUs = 100;

/// How many flow packets ahead the flows' memory is prefetched.
inline constexpr unsigned kRecordPrefetchAhead = 4;

/// What the rx lcore hands to the tx lcore with --pipeline, allocated from the rx lcore's
/// flow allocator and freed by the tx lcore.
struct PipelineRecord {
  rte_mbuf* mbuf = nullptr;
  std::uint64_t rx_tsc = 0;  ///< for the rx -> tx latency the tx lcore measures
  std::uint16_t dst_port = 0;
  FlowKey key{};  ///< the packet's flow (zero for passthrough)
};

/// An lcore's tx buffers, one per destination port; drops are counted, never lost.
class TxBuffers {
 public:
  TxBuffers() = default;
  TxBuffers(const TxBuffers&) = delete;
  TxBuffers& operator=(const TxBuffers&) = delete;
  ~TxBuffers() {
    for (rte_eth_dev_tx_buffer* b : buf_)
      rte_free(b);
  }

  /// A buffer for each port this lcore transmits on.
  std::string init(const App& app, const std::vector<std::uint16_t>& rx_ports, int socket,
                   LcoreCounters& counters) {
    for (std::uint16_t rx : rx_ports) {
      const std::uint16_t dst = app.ports.dst[rx];
      if (buf_[dst] != nullptr) continue;
      buf_[dst] = static_cast<rte_eth_dev_tx_buffer*>(
          rte_zmalloc_socket("ctxfwd_txb", RTE_ETH_TX_BUFFER_SIZE(kBurst), 0, socket));
      if (buf_[dst] == nullptr) return "no memory for a tx buffer";
      rte_eth_tx_buffer_init(buf_[dst], kBurst);
      rte_eth_tx_buffer_set_err_callback(buf_[dst], on_unsent, &counters);
      ports_[n_ports_++] = dst;
    }
    counters_ = &counters;
    return {};
  }

  /// Queues one packet; sends the buffer when it is full.
  void send(std::uint16_t port, rte_mbuf* m) {
    counters_->tx.add(rte_eth_tx_buffer(port, 0, buf_[port], m));
  }
  void flush() {
    for (unsigned i = 0; i < n_ports_; ++i)
      counters_->tx.add(rte_eth_tx_buffer_flush(ports_[i], 0, buf_[ports_[i]]));
  }

 private:
  static void on_unsent(rte_mbuf** pkts, std::uint16_t unsent, void* userdata) {
    static_cast<LcoreCounters*>(userdata)->drop(Drop::tx_failed, unsent);
    rte_pktmbuf_free_bulk(pkts, unsent);
  }

  std::array<rte_eth_dev_tx_buffer*, RTE_MAX_ETHPORTS> buf_{};
  std::array<std::uint16_t, RTE_MAX_ETHPORTS> ports_{};
  unsigned n_ports_ = 0;
  LcoreCounters* counters_ = nullptr;
};

/// l2fwd's rewrite: destination 02:00:00:00:00:<dst port>, source the tx port's MAC.
/// Every forwarded frame holds an Ethernet header (the parser refuses shorter ones).
inline void rewrite_macs(rte_mbuf* m, std::uint16_t dst, const rte_ether_addr& src) {
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  eth->dst_addr = rte_ether_addr{{0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(dst)}};
  rte_ether_addr_copy(&src, &eth->src_addr);
}

template <FlowAllocator A>
class Worker {
 public:
  explicit Worker(LcoreState& st) : st_(st), app_(*st.app), c_(st.counters) {}

  /// The lcore's whole life; returns 0, or -1 after setting st.error.
  int run() {
    switch (st_.plan.role) {
      case Role::forward:
      case Role::pipeline_rx:
        return run_rx();
      case Role::pipeline_tx:
        return run_tx();
      case Role::idle:
        break;
    }
    st_.phase.store(Phase::finished, std::memory_order_release);
    return 0;
  }

 private:
  // forward and pipeline_rx: everything up to the hand-off is the same.
  int run_rx() {
    const bool pipeline = st_.plan.role == Role::pipeline_rx;
    if (auto e = init_flow_state(); !e.empty()) return fail(e);
    if (!pipeline) {
      if (auto e = tx_.init(app_, st_.plan.rx_ports, st_.plan.socket, c_); !e.empty())
        return fail(e);
    } else {
      st_.allocator.store(&alloc_, std::memory_order_release);
    }
    st_.bytes_in_use_start = st_.alloc.in_use();
    st_.phase.store(Phase::running, std::memory_order_release);
    st_.start_tsc = rte_rdtsc();
    const std::uint64_t drain = drain_cycles();
    std::uint64_t next_drain = st_.start_tsc + drain;
    while (!app_.stop.load(std::memory_order_relaxed)) {
      const std::uint64_t now = rte_rdtsc();
      for (std::uint16_t port : st_.plan.rx_ports)
        poll(port, now, pipeline);
      if (now >= next_drain) {
        if (!pipeline) tx_.flush();
        table_.expire(now);
        next_drain = now + drain;
      }
    }
    st_.stop_tsc = rte_rdtsc();
    if (pipeline) {
      st_.rx_done.store(true, std::memory_order_release);
      wait_for_peer_drain();
    } else {
      tx_.flush();
    }
    finish_flows();
    return 0;
  }

  int run_tx() {
    LcoreState& rx = *app_.lcores[st_.plan.peer];
    if (auto e = tx_.init(app_, rx.plan.rx_ports, st_.plan.socket, c_); !e.empty()) {
      st_.tx_done.store(true, std::memory_order_release);
      return fail(e);
    }
    st_.phase.store(Phase::running, std::memory_order_release);
    st_.start_tsc = rte_rdtsc();
    const std::uint64_t drain = drain_cycles();
    std::uint64_t next_drain = st_.start_tsc + drain;
    std::array<void*, kBurst> recs;
    for (;;) {
      const unsigned n = rte_ring_dequeue_burst(st_.ring, recs.data(), kBurst, nullptr);
      const std::uint64_t now = rte_rdtsc();
      if (n > 0) transmit_records(rx, recs.data(), n, now);
      if (now >= next_drain || n == 0) {
        tx_.flush();
        next_drain = now + drain;
      }
      // rx_done is set after the rx lcore's last enqueue: an empty ring then stays empty.
      if (n == 0 && rx.rx_done.load(std::memory_order_acquire) && rte_ring_empty(st_.ring)) break;
    }
    st_.stop_tsc = rte_rdtsc();
    tx_.flush();
    st_.tx_done.store(true, std::memory_order_release);
    st_.phase.store(Phase::finished, std::memory_order_release);
    return 0;
  }

  std::string init_flow_state() {
    FlowAllocConfig ac;
    ac.lcore_id = st_.plan.lcore;
    ac.socket_id = st_.plan.socket;
    ac.max_flows = app_.max_flows_per_lcore();
    ac.context_bytes = app_.opts.resolved_flow_context_bytes();
    ac.counters = &st_.alloc;
    if (auto e = alloc_.init(ac); !e.empty()) return e;
    typename FlowTable<A>::Config tc;
    tc.lcore_id = st_.plan.lcore;
    tc.socket_id = st_.plan.socket;
    tc.max_flows = ac.max_flows;
    tc.idle_cycles = app_.opts.resolved_idle_timeout_ms() * (app_.tsc_hz / 1000);
    tc.linger_cycles = std::uint64_t{app_.opts.close_linger_ms} * (app_.tsc_hz / 1000);
    tc.sweep_cycles = drain_cycles();
    tc.keep_refused = app_.opts.keep_refused_flows;
    return table_.init(tc, alloc_, c_);
  }

  std::uint64_t drain_cycles() const { return (app_.tsc_hz + 999999) / 1000000 * kDrainUs; }

  // One rx burst: parse every packet, look the flow packets' keys up together, then do
  // each packet's work in arrival order and hand it on.
  void poll(std::uint16_t port, std::uint64_t now, bool pipeline) {
    std::array<rte_mbuf*, kBurst> pkts;
    const std::uint16_t n = rte_eth_rx_burst(port, 0, pkts.data(), kBurst);
    if (n > 0) process_burst(pkts.data(), n, port, now, pipeline);
  }

  // Everything ctxfwd does with a burst. Not inlined, so that bench/ctxfwd_callgrind.sh
  // can count its instructions apart from the device's.
  [[gnu::noinline]] void process_burst(rte_mbuf** pkts, std::uint16_t n, std::uint16_t port,
                                       std::uint64_t now, bool pipeline) {
    c_.rx.add(n);
    // The results are constructed in place: assigning parse()'s result into an array
    // element would copy it out of a stack temporary and stall on store forwarding.
    alignas(ParseResult) std::byte storage[kBurst * sizeof(ParseResult)];
    auto* parsed = reinterpret_cast<ParseResult*>(storage);
    std::array<const void*, kBurst> keys;
    std::array<hash_sig_t, kBurst> sigs;
    std::array<void*, kBurst> hints;
    unsigned n_keys = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void*));
      const ParseResult* r = new (&parsed[i]) ParseResult(
          parse(rte_pktmbuf_mtod(pkts[i], const std::byte*), rte_pktmbuf_data_len(pkts[i])));
      if (r->status != Status::flow) continue;
      sigs[n_keys] = FlowTable<A>::hash(r->key);
      keys[n_keys++] = &r->key;
    }
    table_.lookup_burst(keys.data(), sigs.data(), n_keys, hints.data());
    // The flows' memory is touched a few packets ahead, once their slots have arrived.
    for (unsigned j = 0; j < n_keys && j < kRecordPrefetchAhead; ++j)
      table_.prefetch(hints[j]);
    const std::uint16_t dst = app_.ports.dst[port];
    std::array<void*, kBurst> recs;
    unsigned n_recs = 0;
    unsigned k = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      const ParseResult& r = parsed[i];
      void* hint = nullptr;
      hash_sig_t sig = 0;
      if (r.status == Status::flow) {
        if (k + kRecordPrefetchAhead < n_keys) table_.prefetch(hints[k + kRecordPrefetchAhead]);
        sig = sigs[k];
        hint = hints[k++];
      }
      if (!admit(m, r, sig, now, hint)) {
        rte_pktmbuf_free(m);
      } else if (!pipeline) {
        if (app_.opts.mac_updating) rewrite_macs(m, dst, app_.ports.mac[dst]);
        tx_.send(dst, m);
      } else if (void* rec = make_record(m, r, dst, now)) {
        recs[n_recs++] = rec;
      }
    }
    if (n_recs > 0) hand_off(recs.data(), n_recs);
  }

  // Counts a parsed packet and does its flow's work; false when it is to be dropped.
  bool admit(rte_mbuf* m, const ParseResult& r, hash_sig_t sig, std::uint64_t now, void* hint) {
    switch (r.status) {
      case Status::malformed:
        c_.malformed_by[static_cast<std::size_t>(r.reason)].add(1);
        c_.drop(Drop::malformed);
        return false;
      case Status::passthrough:
        c_.passthrough.add(1);
        return true;
      case Status::flow:
        break;
    }
    const auto* frame = rte_pktmbuf_mtod(m, const std::byte*);
    return table_.on_packet(r, sig, frame, rte_pktmbuf_data_len(m), now, hint) ==
           FlowVerdict::forward;
  }

  void* make_record(rte_mbuf* m, const ParseResult& r, std::uint16_t dst, std::uint64_t now) {
    void* mem = alloc_.allocate_record(sizeof(PipelineRecord));
    if (mem == nullptr) {
      c_.drop(Drop::record_alloc_failed);
      rte_pktmbuf_free(m);
      return nullptr;
    }
    auto* rec = new (mem) PipelineRecord;
    rec->mbuf = m;
    rec->rx_tsc = now;
    rec->dst_port = dst;
    if (r.status == Status::flow) rec->key = r.key;
    return rec;
  }

  // Backpressure: the rx lcore waits for room on the ring rather than drop, so packets
  // queue at the device (its rx ring and imissed count) as they would without a pipeline.
  // Only a tx lcore that is gone makes it give up (counted).
  void hand_off(void** recs, unsigned n) {
    const LcoreState& peer = *app_.lcores[st_.plan.peer];
    unsigned done = 0;
    while (done < n) {
      done += rte_ring_enqueue_burst(st_.ring, recs + done, n - done, nullptr);
      if (done < n) {
        if (peer.tx_done.load(std::memory_order_acquire)) break;
        rte_pause();
      }
    }
    c_.records_sent.add(done);
    for (unsigned i = done; i < n; ++i) {
      auto* rec = static_cast<PipelineRecord*>(recs[i]);
      rte_pktmbuf_free(rec->mbuf);
      alloc_.free_record(rec, sizeof(PipelineRecord));
      c_.drop(Drop::pipeline_stopped);
    }
  }

  void transmit_records(LcoreState& rx, void** recs, unsigned n, std::uint64_t now) {
    A& owner = *static_cast<A*>(rx.allocator.load(std::memory_order_acquire));
    for (unsigned i = 0; i < n; ++i) {
      auto* rec = static_cast<PipelineRecord*>(recs[i]);
      rte_mbuf* m = rec->mbuf;
      const std::uint16_t dst = rec->dst_port;
      st_.latency_cycles += now - rec->rx_tsc;
      ++st_.latency_records;
      owner.free_record(rec, sizeof(PipelineRecord));
      if (app_.opts.mac_updating) rewrite_macs(m, dst, app_.ports.mac[dst]);
      tx_.send(dst, m);
    }
  }

  void wait_for_peer_drain() {
    const LcoreState& peer = *app_.lcores[st_.plan.peer];
    while (!peer.tx_done.load(std::memory_order_acquire))
      rte_pause();
  }

  // At stop: live flows released, the allocator's accounting recorded before and after.
  void finish_flows() {
    st_.flows_live_at_stop = c_.flows_live.get();
    st_.flows_closing_at_stop = c_.flows_closing.get();
    st_.bytes_in_use_at_stop = st_.alloc.in_use();
    table_.release_all();
    st_.bytes_in_use_end = st_.alloc.in_use();
    st_.phase.store(Phase::finished, std::memory_order_release);
  }

  int fail(const std::string& e) {
    st_.error = "lcore " + std::to_string(st_.plan.lcore) + ": " + e;
    st_.rx_done.store(true, std::memory_order_release);
    st_.phase.store(Phase::failed, std::memory_order_release);
    return -1;
  }

  LcoreState& st_;
  App& app_;
  LcoreCounters& c_;
  A alloc_;  // destroyed after table_ (declared first)
  FlowTable<A> table_;
  TxBuffers tx_;
};

/// rte_eal_remote_launch's entry: `arg` is the lcore's LcoreState.
template <FlowAllocator A>
int lcore_main(void* arg) {
  auto* st = static_cast<LcoreState*>(arg);
  Worker<A> w(*st);
  return w.run();
}

}  // namespace ctxfwd
