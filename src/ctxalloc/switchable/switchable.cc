#include "ctxalloc/switchable/switchable.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>

#include "ctxalloc/core/misuse.h"
#include "ctxalloc/sources/node_topology.h"
#include "ctxalloc/sources/numa_policy.h"
#include "ctxalloc/sources/os_memory.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/runtime_hooks.h"

namespace ctxalloc {
namespace detail {

constinit thread_local ThreadState t_state [[gnu::tls_model("initial-exec")]] = {};

}  // namespace detail

namespace {

using detail::t_state;
using detail::ThreadState;

constexpr std::uint32_t kBatchBlocks = 32;
constexpr unsigned kMaxNodes = 64;

void*& link_of(void* block) noexcept {
  return *static_cast<void**>(block);
}

// ------------------------------------------------------------------------- runtime
// Process-wide state, created on first use without malloc: placement-new into static
// storage and mmap'd pages, so it also works when ctxalloc serves malloc itself.

struct Node {
  Node(const SwitchableOptions& o, const MapOptions& m) noexcept
      : thread_segments(m, o.thread_bytes_per_node),
        global_segments(m),
        own_global(global_segments, o.global) {}
  GlobalHeap& global() noexcept {
    GlobalHeap* g = replacement.load(std::memory_order_acquire);
    return g != nullptr ? *g : own_global;
  }
  SegmentSource thread_segments;
  SegmentSource global_segments;
  GlobalHeap own_global;
  std::atomic<GlobalHeap*> replacement{nullptr};  // set_node_global_heap
};

// A heap object and what the runtime knows about it. Heaps are never unmapped: an
// exited thread's heap waits on its node's list until another thread adopts it, and
// pointers to it (in remote batches, in segment tags) stay valid forever.
struct HeapSlot : ThreadHeap {
  HeapSlot* next_abandoned;
  HeapSlot* next_all;  // every heap ever made, newest first (process hooks: fork, stats)
  unsigned node;
  HeapSlot(SegmentSource& s, GlobalHeap& g, unsigned n) noexcept
      : ThreadHeap(s, g), next_abandoned(nullptr), next_all(nullptr), node(n) {}
};

class Runtime {
 public:
  static Runtime& get() noexcept {
    static Runtime* r = [] {
      alignas(Runtime) static unsigned char storage[sizeof(Runtime)];
      return new (storage) Runtime();
    }();
    return *r;
  }

  // n must be a node in use (< nodes()): current_node() clamps, and counts.
  Node& node(unsigned n) noexcept {
    n = in_use(n);
    Node* p = node_[n].load(std::memory_order_acquire);
    if (p != nullptr) return *p;
    std::lock_guard<std::mutex> guard(lock_);
    p = node_[n].load(std::memory_order_relaxed);
    if (p == nullptr) {
      MapOptions m = options_.segments;
      if (nodes_ > 1 && m.numa.mode == NumaMode::default_policy) {
        m.numa = NumaPolicy::preferred_node(n);
      }
      void* mem = map_pages(sizeof(Node));
      if (mem == nullptr) std::abort();  // no memory for the runtime itself
      p = new (mem) Node(options_, m);
      node_[n].store(p, std::memory_order_release);
    }
    return *p;
  }

  unsigned nodes() const noexcept { return nodes_; }
  const SwitchableOptions& options() const noexcept { return options_; }

  bool configure(const SwitchableOptions& o) noexcept {
    std::lock_guard<std::mutex> guard(lock_);
    if (used_.load(std::memory_order_relaxed)) return false;
    if (o.default_mode != Mode::global && o.default_mode != Mode::thread) return false;
    options_ = o;
    return true;
  }
  void mark_used() noexcept { used_.store(true, std::memory_order_relaxed); }

  // A heap for a new thread on node n: an abandoned one of the node if any, else a new one.
  ThreadHeap* acquire_heap(unsigned n) noexcept {
    n = in_use(n);  // also indexes abandoned_
    Node& nd = node(n);
    {
      std::lock_guard<std::mutex> guard(lock_);
      if (HeapSlot* s = abandoned_[n]) {
        abandoned_[n] = s->next_abandoned;
        --abandoned_count_;
        s->adopt();
        return s;
      }
    }
    void* mem = take_slot();
    if (mem == nullptr) return nullptr;
    auto* slot = new (mem) HeapSlot(nd.thread_segments, nd.global(), n);
    heaps_.fetch_add(1, std::memory_order_relaxed);
    link_new_heap(slot);
    return slot;
  }

  void release_heap(ThreadHeap* heap) noexcept {
    heap->abandon();
    auto* slot = static_cast<HeapSlot*>(heap);  // every runtime heap is a HeapSlot
    std::lock_guard<std::mutex> guard(lock_);
    slot->next_abandoned = abandoned_[slot->node];
    abandoned_[slot->node] = slot;
    ++abandoned_count_;
  }

  // A node the runtime has no heaps for -- a CPU on a node past the kMaxNodes it keeps --
  // is served by node 0, counted (HeapCensus::node_fallbacks; the constructor said once
  // on stderr that some nodes share node 0).
  unsigned in_use(unsigned n) noexcept {
    if (n < nodes_) [[likely]]
      return n;
    node_fallbacks_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }

  HeapCensus census() noexcept {
    HeapCensus c;
    c.node_fallbacks = node_fallbacks_.load(std::memory_order_relaxed);
    c.thread_exit_hook = key_ok_;
    std::lock_guard<std::mutex> guard(lock_);
    c.heaps = heaps_.load(std::memory_order_relaxed);
    c.abandoned = abandoned_count_;
    for (unsigned n = 0; n < nodes_; ++n) {
      for (HeapSlot* s = abandoned_[n]; s != nullptr; s = s->next_abandoned) {
        c.live_bytes += s->live_bytes();  // relaxed counters: no lock needed
        c.live_contexts += s->live_contexts();
      }
      if (Node* nd = existing_node(n)) {
        c.source_bytes += nd->thread_segments.bytes_out() + nd->global_segments.bytes_out();
        c.source_peak_bytes +=
            nd->thread_segments.peak_bytes_out() + nd->global_segments.peak_bytes_out();
      }
    }
    return c;
  }

  /// The key whose destructor abandons an exiting thread's heap; key_ok() is false when
  /// pthread_key_create failed (then key() is no key and no value may be set for it).
  pthread_key_t key() const noexcept { return key_; }
  bool key_ok() const noexcept { return key_ok_; }
  unsigned node_of_cpu(int cpu) const noexcept { return topology_.node_of_cpu(cpu); }

  // ----------------------------------------------------------- process hooks (fork, stats)
  void link_new_heap(HeapSlot* slot) noexcept {
    std::lock_guard<std::mutex> guard(lock_);
    slot->next_all = all_.load(std::memory_order_relaxed);
    all_.store(slot, std::memory_order_release);  // readers walk the list without the lock
  }
  HeapSlot* all_heaps() const noexcept { return all_.load(std::memory_order_acquire); }
  Node* existing_node(unsigned n) const noexcept {
    return n < nodes_ ? node_[n].load(std::memory_order_acquire) : nullptr;
  }
  // Lock order: the runtime's lock, then every heap's (acquire_heap adopts under the
  // runtime's lock; abandon holds a heap's lock and then its source's).
  void lock_for_fork() noexcept {
    lock_.lock();
    for (HeapSlot* h = all_heaps(); h != nullptr; h = h->next_all)
      h->lock_for_fork();
  }
  void unlock_after_fork() noexcept {
    for (HeapSlot* h = all_heaps(); h != nullptr; h = h->next_all)
      h->unlock_after_fork();
    lock_.unlock();
  }
  // The child of a fork: every heap but `keep` lost its thread. Abandons them (their
  // owners were outside the heap when fork ran: the process allocator made sure) and
  // rebuilds the lists of heaps waiting for adoption.
  void abandon_all_but(ThreadHeap* keep) noexcept {
    std::lock_guard<std::mutex> guard(lock_);
    for (auto& a : abandoned_)
      a = nullptr;
    abandoned_count_ = 0;
    for (HeapSlot* h = all_heaps(); h != nullptr; h = h->next_all) {
      if (h == keep) continue;
      if (!h->abandoned()) h->abandon();
      h->next_abandoned = abandoned_[h->node];
      abandoned_[h->node] = h;
      ++abandoned_count_;
    }
  }

 private:
  Runtime() noexcept {
    // Not libnuma: numa_node_of_cpu allocates, and this may run inside malloc.
    topology_ = NodeTopology::read();
    nodes_ = topology_.nodes();
    if (nodes_ > kMaxNodes) {
      nodes_ = kMaxNodes;
      say("ctxalloc: more NUMA nodes than the 64 the runtime keeps heaps for; the CPUs of "
          "the others use node 0's (counted in heap_census().node_fallbacks)\n");
    }
    for (auto& n : node_)
      n.store(nullptr, std::memory_order_relaxed);
    for (auto& a : abandoned_)
      a = nullptr;
    if (const int e = pthread_key_create(&key_, &Runtime::on_thread_exit); e != 0) {
      // Without the key no exit handler runs: a thread's heap is then never abandoned
      // for adoption (its blocks stay valid, frees of them from other threads wait in
      // its remote stack). Said once, and heap_census().thread_exit_hook is false.
      key_ok_ = false;
      say(e == EAGAIN ? "ctxalloc: pthread_key_create failed (EAGAIN: no keys left); the heaps "
                        "of exiting threads will not be reused\n"
                      : "ctxalloc: pthread_key_create failed; the heaps of exiting threads "
                        "will not be reused\n");
    }
  }

  // One line on stderr, without stdio (this may run inside malloc).
  static void say(const char* line) noexcept {
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, line, std::strlen(line));
  }

  static void* map_pages(std::size_t bytes) noexcept { return os_map_rw(bytes); }

  // Heap slots come from 1 MiB mappings carved in order.
  void* take_slot() noexcept {
    std::lock_guard<std::mutex> guard(lock_);
    constexpr std::size_t kSlot = (sizeof(HeapSlot) + 63) & ~std::size_t{63};
    constexpr std::size_t kSlab = std::size_t{1} << 20;
    static_assert(kSlot <= kSlab);
    if (slab_left_ < kSlot) {
      slab_ = static_cast<std::byte*>(map_pages(kSlab));
      if (slab_ == nullptr) return nullptr;
      slab_left_ = kSlab;
    }
    void* p = slab_;
    slab_ += kSlot;
    slab_left_ -= kSlot;
    return p;
  }

  static void on_thread_exit(void*) noexcept;

  std::mutex lock_;
  std::atomic<bool> used_{false};
  SwitchableOptions options_{};
  unsigned nodes_ = 1;
  std::atomic<Node*> node_[kMaxNodes];
  HeapSlot* abandoned_[kMaxNodes];
  std::size_t abandoned_count_ = 0;
  std::atomic<std::size_t> heaps_{0};
  std::byte* slab_ = nullptr;
  std::size_t slab_left_ = 0;
  pthread_key_t key_{};
  bool key_ok_ = true;
  std::atomic<std::uint64_t> node_fallbacks_{0};
  NodeTopology topology_;
  std::atomic<HeapSlot*> all_{nullptr};
};

// A CPU the topology does not know (sched_getcpu failed, or past NodeTopology::kMaxCpus)
// is on node 0, as intended: any node's heaps serve any CPU, node 0's are there.
unsigned current_node() noexcept {
  Runtime& rt = Runtime::get();
  if (rt.nodes() <= 1) return 0;
  return rt.in_use(rt.node_of_cpu(sched_getcpu()));
}

// ------------------------------------------------------------------------- remote batches

void push_batch(detail::RemoteBatch& b) noexcept {
  if (b.count != 0) b.heap->push_remote(b.first, b.last, b.small);
  b = detail::RemoteBatch{};
}

void flush_batches(ThreadState& s) noexcept {
  for (auto& b : s.batches)
    push_batch(b);
}

// Makes slot 0 the batch for (heap, small): slot 0 holds the batch used last, so a thread
// freeing many blocks of one producer finds its batch at the first compare.
[[gnu::noinline]] void select_batch(ThreadState& s, ThreadHeap* heap, bool small) noexcept {
  unsigned i = 1;
  while (i < 4 && (s.batches[i].heap != heap || s.batches[i].small != small))
    ++i;
  if (i == 4) {  // none for this heap: evict the oldest slot
    push_batch(s.batches[3]);
    i = 3;
    s.batches[3].heap = heap;
    s.batches[3].small = small;
  }
  std::swap(s.batches[0], s.batches[i]);  // most recent first
}

[[gnu::noinline]] void push_full_batch(detail::RemoteBatch& b) noexcept {
  b.heap->push_remote(b.first, b.last, b.small);
  b.first = b.last = nullptr;
  b.count = 0;
}

// Adds p (a block of another thread's heap) to this thread's batch for that heap and
// kind; a full batch goes to the heap in one CAS. Every call out of here is a tail call,
// so the common case needs no stack frame.
void batch_remote(ThreadState& s, ThreadHeap* heap, void* p, bool small) noexcept;

[[gnu::noinline]] void batch_remote_other(ThreadState& s, ThreadHeap* heap, void* p,
                                          bool small) noexcept {
  select_batch(s, heap, small);
  batch_remote(s, heap, p, small);
}

inline void batch_remote(ThreadState& s, ThreadHeap* heap, void* p, bool small) noexcept {
  detail::RemoteBatch& b = s.batches[0];
  if (b.heap != heap || b.small != small) [[unlikely]]
    return batch_remote_other(s, heap, p, small);
  if (b.count == 0) b.last = p;
  link_of(p) = b.first;
  b.first = p;
  if (++b.count >= kBatchBlocks) [[unlikely]]
    return push_full_batch(b);
}

// ------------------------------------------------------------------------- thread state

void init_thread(ThreadState& s) noexcept {
  Runtime& rt = Runtime::get();
  rt.mark_used();
  s.mode = s.exited != 0 ? Mode::global : rt.options().default_mode;
  if (s.mode == Mode::thread && current_thread_heap() == nullptr) s.mode = Mode::global;
}

}  // namespace

// Leaves the calling thread without a heap (global mode if it was in thread mode) and
// gives its heap up: abandoned, and pooled for another thread unless its owner attached it.
void drop_thread_heap(ThreadState& s) noexcept {
  flush_batches(s);
  ThreadHeap* heap = s.heap;
  const bool external = s.external != 0;
  s.heap = nullptr;
  s.small_owner = nullptr;
  s.external = 0;
  if (s.mode == Mode::thread) s.mode = Mode::global;
  if (heap == nullptr) return;
  if (external) {
    heap->abandon();
  } else {
    Runtime::get().release_heap(heap);
  }
}

void Runtime::on_thread_exit(void*) noexcept {
  ThreadState& s = t_state;
  // From here on the thread allocates from the global heap: later TLS destructors may
  // still allocate and free.
  s.exited = 1;
  drop_thread_heap(s);
}

const char* to_string(Mode m) noexcept {
  switch (m) {
    case Mode::uninitialized:
      return "uninitialized";
    case Mode::global:
      return "global";
    case Mode::thread:
      return "thread";
    case Mode::context:
      return "context";
  }
  return "?";
}

bool configure(const SwitchableOptions& options) noexcept {
  return Runtime::get().configure(options);
}

ThreadHeap* current_thread_heap() noexcept {
  ThreadState& s = t_state;
  if (s.heap != nullptr) return s.heap;
  if (s.exited != 0) return nullptr;
  Runtime& rt = Runtime::get();
  rt.mark_used();
  ThreadHeap* heap = rt.acquire_heap(current_node());
  if (heap == nullptr) return nullptr;
  s.heap = heap;
  s.small_owner = &heap->small();
  // A non-null value makes pthread call the exit handler for this thread.
  if (rt.key_ok()) pthread_setspecific(rt.key(), heap);
  return heap;
}

GlobalHeap& current_global_heap() noexcept {
  return Runtime::get().node(current_node()).global();
}

void attach_thread_heap(ThreadHeap* heap) noexcept {
  ThreadState& s = t_state;
  if (s.mode == Mode::uninitialized) init_thread(s);
  if (s.heap == heap) return;
  const Mode mode = s.mode;
  drop_thread_heap(s);
  if (heap->abandoned()) heap->adopt();
  s.heap = heap;
  s.small_owner = &heap->small();
  s.external = 1;
  s.mode = mode;
  // A non-null value makes pthread call the exit handler for this thread.
  if (Runtime::get().key_ok()) pthread_setspecific(Runtime::get().key(), heap);
}

void detach_thread_heap() noexcept {
  ThreadState& s = t_state;
  if (s.external != 0) drop_thread_heap(s);
}

void set_node_global_heap(unsigned node, GlobalHeap* heap) noexcept {
  Runtime& rt = Runtime::get();
  if (node >= rt.nodes()) return;
  rt.node(node).replacement.store(heap, std::memory_order_release);
}

Mode current_mode() noexcept {
  const ThreadState& s = t_state;
  if (s.mode != Mode::uninitialized) return s.mode;
  return s.exited != 0 ? Mode::global : Runtime::get().options().default_mode;
}

Mode set_mode(Mode m) noexcept {
  ThreadState& s = t_state;
  if (s.mode == Mode::uninitialized) init_thread(s);
  const Mode previous = s.mode;
  switch (m) {
    case Mode::thread:
      if (current_thread_heap() != nullptr) s.mode = Mode::thread;
      break;
    case Mode::global:
      s.mode = Mode::global;
      break;
    case Mode::context:
      if (s.context != nullptr) s.mode = Mode::context;
      break;
    case Mode::uninitialized:
      break;
  }
  return previous;
}

namespace detail {

void* allocate_slow(std::size_t size, std::size_t align) noexcept {
  ThreadState& s = t_state;
  if (s.mode == Mode::uninitialized) init_thread(s);
  if (!is_pow2(align) || align > kMaxAlign) {
    report_misuse(Misuse::bad_argument, "switchable", "allocate", nullptr);
    return nullptr;
  }
  const Layout layout{size, align};
  switch (s.mode) {
    case Mode::thread: {
      // A refill of the size-class front failed, or the request is not a small one.
      flush_batches(s);
      s.heap->drain_remote();
      return s.heap->allocate(layout).ptr;
    }
    case Mode::context:
      return s.context->allocate(layout).ptr;
    case Mode::global:
    case Mode::uninitialized:
      break;
  }
  return current_global_heap().allocate(layout).ptr;
}

void free_remote_other(ThreadHeap* heap, void* p) noexcept {
  batch_remote(t_state, heap, p, false);
}

void free_remote_small(void* p, const OwnerTag* tag) noexcept {
  batch_remote(t_state, ThreadHeap::of_small(tag), p, true);
}

// ------------------------------------------------------------------ the owner table
// The rows of the heaps' kinds (size_class, tree, global_heap, large) and of a foreign
// region; the context kinds' rows are in context.cc, beside the contexts' insides.

namespace {

void free_small(void* p, std::size_t, const OwnerTag* tag) noexcept {
  // Not this thread's front (the inline path checked): another thread's heap.
  batch_remote(t_state, ThreadHeap::of_small(tag), p, true);
}

void free_medium(void* p, std::size_t, const OwnerTag* tag) noexcept {
  ThreadState& s = t_state;
  ThreadHeap* heap = ThreadHeap::of_heap_tag(tag);
  if (heap == s.heap) {
    heap->free_owned(p, tag);
  } else {
    batch_remote(s, heap, p, false);
  }
}

std::size_t heap_usable_size(const void* p, const OwnerTag* tag) noexcept {
  ThreadHeap* heap = ThreadHeap::of_tag(tag);
  return heap == t_state.heap ? heap->allocated_size(p, tag)
                              : ThreadHeap::live_size_any_thread(p, tag);
}

void* heap_reallocate(void* p, const OwnerTag* tag, Layout layout) noexcept {
  ThreadHeap* heap = ThreadHeap::of_tag(tag);
  if (heap == t_state.heap) return heap->resize(p, tag, layout, Move::allowed).ptr;
  return reallocate_by_moving(p, tag, layout);  // another thread's block
}

void free_global(void* p, std::size_t size, const OwnerTag* tag) noexcept {
  static_cast<GlobalHeap*>(tag->owner)->deallocate(Block{static_cast<std::byte*>(p), size}, 1);
}

std::size_t global_usable_size(const void* p, const OwnerTag* tag) noexcept {
  return static_cast<GlobalHeap*>(tag->owner)->allocated_size(p);
}

void* global_reallocate(void* p, const OwnerTag* tag, Layout layout) noexcept {
  auto* g = static_cast<GlobalHeap*>(tag->owner);
  const std::size_t have = g->allocated_size(p);
  if (have == 0) {
    report_misuse(Misuse::double_free, "switchable", "reallocate", p);
    return nullptr;
  }
  const Block old{static_cast<std::byte*>(p), have};
  return (layout.size >= have ? g->grow(old, layout, Move::allowed)
                              : g->shrink(old, layout, Move::allowed))
      .ptr;
}

constexpr OwnerOps kSmallOwner{&free_small, nullptr, &heap_usable_size, &heap_reallocate};
constexpr OwnerOps kMediumOwner{&free_medium, nullptr, &heap_usable_size, &heap_reallocate};
constexpr OwnerOps kGlobalOwner{&free_global, nullptr, &global_usable_size, &global_reallocate};

}  // namespace

// A block of no switchable owner (a region's): freeing it is misuse; it has no size
// known here, so reallocate() reports it as not live (a double free), as before the table.
constinit const OwnerOps kForeignOwner{
    [](void* p, std::size_t, const OwnerTag*) noexcept {
      report_misuse(Misuse::foreign_pointer, "switchable", "deallocate", p);
    },
    nullptr,
    [](const void*, const OwnerTag*) noexcept -> std::size_t { return 0; },
    &reallocate_by_moving,
};

// By kind value; the static_asserts keep the order with owner.h's numbering.
constinit const OwnerOps* const kOwnerTable[owner_kind::kCount] = {
    &kSmallOwner,  &kMediumOwner, &Context::kArenaOwner, &Context::kSpillOwner,
    &kGlobalOwner, &kGlobalOwner, &kForeignOwner,        &Context::kChunkOwner,
};
static_assert(static_cast<int>(owner_kind::size_class) == 0 &&
              static_cast<int>(owner_kind::tree) == 1 &&
              static_cast<int>(owner_kind::context_arena) == 2 &&
              static_cast<int>(owner_kind::spill) == 3 &&
              static_cast<int>(owner_kind::global_heap) == 4 &&
              static_cast<int>(owner_kind::large) == 5 &&
              static_cast<int>(owner_kind::region) == 6 &&
              static_cast<int>(owner_kind::flow_chunk) == 7 && owner_kind::kCount == 8);

void* reallocate_by_moving(void* p, const OwnerTag* tag, Layout layout) noexcept {
  const std::size_t have = owner_ops(tag).usable_size(p, tag);
  if (have == 0) {
    report_misuse(Misuse::double_free, "switchable", "reallocate", p);
    return nullptr;
  }
  void* fresh = allocate(layout.size, layout.align);
  if (fresh == nullptr) return nullptr;
  std::memcpy(fresh, p, have < layout.size ? have : layout.size);
  deallocate(p);
  return fresh;
}

void deallocate_slow(void* p, std::size_t size, const OwnerTag* tag) noexcept {
  if (tag == nullptr) {
    if (p == nullptr || is_zero_size_sentinel(p)) return;
    report_misuse(Misuse::foreign_pointer, "switchable", "deallocate", p);
    return;
  }
  owner_ops(tag).free(p, size, tag);
}

}  // namespace detail

void* allocate_zeroed(std::size_t size, std::size_t align) noexcept {
  void* p = allocate(size, align);
  if (p != nullptr && size != 0) std::memset(p, 0, size);
  return p;
}

std::size_t usable_size(const void* p) noexcept {
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag == nullptr) return 0;
  return detail::owner_ops(tag).usable_size(p, tag);
}

void* reallocate(void* p, std::size_t size, std::size_t align) noexcept {
  if (p == nullptr || is_zero_size_sentinel(p)) return allocate(size, align);
  if (size == 0) {
    deallocate(p);
    return nullptr;
  }
  const OwnerTag* tag = SegmentMap::lookup(p);
  if (tag == nullptr) {
    report_misuse(Misuse::foreign_pointer, "switchable", "reallocate", p);
    return nullptr;
  }
  return detail::owner_ops(tag).reallocate(p, tag, Layout{size, align});
}

void flush() noexcept {
  ThreadState& s = t_state;
  flush_batches(s);
  if (s.heap != nullptr) s.heap->drain_remote();
}

HeapCensus heap_census() noexcept {
  return Runtime::get().census();
}

// ------------------------------------------------------------------------- process hooks
// For the process allocator (replace/): fork support and exit statistics. They are
// declared in runtime_hooks.h, not in switchable.h: only replace/ may call them.

namespace detail {

void fork_prepare() noexcept {
  Runtime::get().lock_for_fork();
}

void fork_parent() noexcept {
  Runtime::get().unlock_after_fork();
}

void fork_child_unlock() noexcept {
  Runtime::get().unlock_after_fork();
}

void flush_vanished_thread(ThreadState& s) noexcept {
  if (&s == &t_state) return;
  flush_batches(s);
}

void fork_child_abandon() noexcept {
  Runtime::get().abandon_all_but(t_state.heap);
}

void for_each_heap(void (*fn)(void* context, const ThreadHeap& heap, bool abandoned),
                   void* context) noexcept {
  for (HeapSlot* h = Runtime::get().all_heaps(); h != nullptr; h = h->next_all)
    fn(context, *h, h->abandoned());
}

void for_each_global_heap(void (*fn)(void* context, const GlobalHeap& heap, unsigned node),
                          void* context) noexcept {
  Runtime& rt = Runtime::get();
  for (unsigned n = 0; n < rt.nodes(); ++n) {
    if (Node* nd = rt.existing_node(n)) fn(context, nd->global(), n);
  }
}

Mode default_mode() noexcept {
  return Runtime::get().options().default_mode;
}

}  // namespace detail

}  // namespace ctxalloc
