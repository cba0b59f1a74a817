// The statistics registry (see ctxalloc/dpdk/registry.h).
#include "ctxalloc/dpdk/registry.h"

#include <pthread.h>

#include <cerrno>
#include <new>

namespace ctxalloc::dpdk {
namespace {

// A plain pthread mutex: statically initialised, it allocates nothing.
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

// Static storage, built on first use (a function-local static of a trivially
// destructible type: no destructor runs at exit while lcores may still report).
alignas(Registry) unsigned char g_storage[sizeof(Registry)];

}  // namespace

const char* to_string(Account a) noexcept {
  switch (a) {
    case Account::thread:
      return "thread";
    case Account::context:
      return "context";
    case Account::global_heap:
      return "global_heap";
    case Account::mempool:
      return "mempool";
    case Account::count:
      break;
  }
  return "?";
}

Registry& Registry::instance() noexcept {
  static Registry* r = new (g_storage) Registry();
  return *r;
}

Registry::Locked::Locked(const Registry& reg) noexcept : r(reg) {
  pthread_mutex_lock(&g_lock);
}

Registry::Locked::~Locked() {
  pthread_mutex_unlock(&g_lock);
}

LcoreCounters& Registry::lcore(unsigned lcore_id) noexcept {
  return lcores_[lcore_id < kMaxLcores ? lcore_id : kNonEalSlot];
}

SocketCounters& Registry::socket(unsigned socket_id) noexcept {
  return sockets_[socket_id < kMaxSockets ? socket_id : 0];
}

const StatsSource* Registry::lcore_slot(unsigned id) const noexcept {
  return lcore_sources_[id < kMaxLcores ? id : kNonEalSlot];
}

const StatsSource* Registry::socket_slot(unsigned id) const noexcept {
  return socket_sources_[id < kMaxSockets ? id : 0];
}

int Registry::attach_in(StatsSource* slot, unsigned n, const StatsSource& src) noexcept {
  if (src.read == nullptr || src.account >= Account::count) return -EINVAL;
  Locked l(*this);
  for (unsigned i = 0; i < n; ++i) {
    if (slot[i].read == nullptr) {
      slot[i] = src;
      return 0;
    }
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return -ENOSPC;
}

int Registry::attach_lcore(unsigned lcore_id, const StatsSource& src) noexcept {
  if (lcore_id > kNonEalSlot) return -EINVAL;
  return attach_in(lcore_sources_[lcore_id], kMaxSourcesPerLcore, src);
}

int Registry::attach_socket(unsigned socket_id, const StatsSource& src) noexcept {
  if (socket_id >= kMaxSockets) return -EINVAL;
  return attach_in(socket_sources_[socket_id], kMaxSourcesPerSocket, src);
}

int Registry::attach_lcore_counts(unsigned lcore_id, const CountsSource& src) noexcept {
  if (lcore_id > kNonEalSlot || src.read == nullptr) return -EINVAL;
  Locked l(*this);
  if (lcore_counts_[lcore_id].read != nullptr) return -EBUSY;
  lcore_counts_[lcore_id] = src;
  return 0;
}

LcoreCounts Registry::read_lcore_counts(unsigned lcore_id) const noexcept {
  const unsigned id = lcore_id < kMaxLcores ? lcore_id : kNonEalSlot;
  const LcoreCounters& c = lcores_[id];
  LcoreCounts n;
  n.fallback_to_thread = c.fallback_to_thread.get();
  n.fallback_to_global = c.fallback_to_global.get();
  n.fallback_failures = c.fallback_failures.get();
  n.remote_frees = c.remote_frees.get();
  Locked l(*this);
  if (lcore_counts_[id].read != nullptr) lcore_counts_[id].read(lcore_counts_[id].self, n);
  return n;
}

unsigned Registry::detach(const void* self) noexcept {
  Locked l(*this);
  unsigned removed = 0;
  for (CountsSource& c : lcore_counts_) {
    if (c.read != nullptr && c.self == self) {
      c = CountsSource{};
      ++removed;
    }
  }
  auto scrub = [&](StatsSource* slot, unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      if (slot[i].read != nullptr && slot[i].self == self) {
        slot[i] = StatsSource{};
        ++removed;
      }
    }
  };
  for (auto& slot : lcore_sources_)
    scrub(slot, kMaxSourcesPerLcore);
  for (auto& slot : socket_sources_)
    scrub(slot, kMaxSourcesPerSocket);
  return removed;
}

namespace {

void add_into(AccountTotals& t, const StatsSource& src, const Stats& s) {
  Stats& into = t.by_account[static_cast<unsigned>(src.account)];
  into += s;
  ++t.sources;
}

}  // namespace

AccountTotals Registry::read_lcore(unsigned lcore_id) const noexcept {
  AccountTotals t;
  for_each_lcore_source(lcore_id,
                        [&](const StatsSource& src, const Stats& s) { add_into(t, src, s); });
  return t;
}

AccountTotals Registry::read_socket(unsigned socket_id) const noexcept {
  AccountTotals t;
  for_each_socket_source(socket_id,
                         [&](const StatsSource& src, const Stats& s) { add_into(t, src, s); });
  return t;
}

}  // namespace ctxalloc::dpdk
