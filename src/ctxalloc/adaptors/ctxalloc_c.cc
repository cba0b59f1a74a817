// The C API (ctxalloc.h): the edge where C's conventions meet the C++ allocators.
// Arguments from C are checked here (alignments through Layout::make, enum values,
// NULL handles) so the allocators only see valid requests; failures become a negative
// errno (or NULL and errno) plus a line for ctxalloc_last_error(); the only calls that
// can throw (check_invariants builds a std::string) are caught here.
#include "ctxalloc/adaptors/ctxalloc.h"

#include <cerrno>
#include <cstring>
#include <optional>

#include "ctxalloc/adaptors/detail/c_error.h"
#include "ctxalloc/adaptors/detail/c_handles.h"
#include "ctxalloc/adaptors/detail/mapped_object.h"
#include "ctxalloc/allocators/bitset_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/allocators/memory_map_allocator.h"
#include "ctxalloc/allocators/null_allocator.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/sources/arena_source.h"
#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/region_source.h"

namespace {

using namespace ctxalloc;
using capi::AllocatorHandle;
using capi::fail;
using capi::fail_null;
using capi::SourceHandle;

// --------------------------------------------------------------------- conversions

std::optional<Layout> layout_of(std::size_t size, std::size_t align) noexcept {
  return Layout::make(size, align == 0 ? kDefaultAlign : align);
}

// The C options as MapOptions; nothing when an enum field holds no valid value.
std::optional<MapOptions> map_options_of(const ctxalloc_mmap_options* o) noexcept {
  MapOptions m;
  if (o == nullptr) return m;
  if (o->huge_pages < CTXALLOC_HUGE_NONE || o->huge_pages > CTXALLOC_HUGE_1G) return std::nullopt;
  if (o->huge_fallback < CTXALLOC_HUGE_FALLBACK_TRANSPARENT ||
      o->huge_fallback > CTXALLOC_HUGE_FALLBACK_FAIL)
    return std::nullopt;
  if (o->numa_mode < CTXALLOC_NUMA_DEFAULT || o->numa_mode > CTXALLOC_NUMA_LOCAL)
    return std::nullopt;
  if (o->numa_node_flags < CTXALLOC_NODES_PLAIN || o->numa_node_flags > CTXALLOC_NODES_RELATIVE)
    return std::nullopt;
  m.huge = static_cast<HugePages>(o->huge_pages);
  m.fallback = static_cast<HugeFallback>(o->huge_fallback);
  m.populate = o->populate != 0;
  m.lock = o->lock != 0;
  m.no_reserve = o->no_reserve != 0;
  m.dontdump = o->dontdump != 0;
  m.numa.mode = static_cast<NumaMode>(o->numa_mode);
  m.numa.flags = static_cast<NodeFlags>(o->numa_node_flags);
  m.numa.strict = o->numa_strict != 0;
  m.numa.move = o->numa_move != 0;
  for (unsigned node = 0; node < CTXALLOC_MAX_NUMA_NODES; ++node) {
    if ((o->numa_nodes[node / 64] >> (node % 64)) & 1) m.numa.nodes.set(node);
  }
  return m;
}

// --------------------------------------------------------------------- sources

template <class S, class... Args>
ctxalloc_source* make_source(const char* fn, const char* name, Args&&... args) noexcept {
  auto* h = detail::mapped_new<SourceHandle<S>>(name, std::forward<Args>(args)...);
  if (h == nullptr) return fail_null(ENOMEM, "%s: no memory for the handle", fn);
  const SourceError& e = h->get().config_error();
  if (!e.ok()) {
    char message[240];  // the handle, and its error, go away before it is reported
    std::snprintf(message, sizeof message, "%s", e.message());
    detail::mapped_delete(static_cast<ctxalloc_source*>(h));
    return fail_null(EINVAL, "%s: %s", fn, message);
  }
  return h;
}

// --------------------------------------------------------------------- allocators

// Ties a freshly made allocator handle to the source region it runs on.
ctxalloc_allocator* adopt(ctxalloc_allocator* h, ctxalloc_source* source, Block region) noexcept {
  h->source = source;
  h->region = region;
  if (source != nullptr) source->users.fetch_add(1, std::memory_order_relaxed);
  return h;
}

// A region of region_size bytes from source, for an allocator that will own it.
Block take_region(const char* fn, ctxalloc_source* source, std::size_t region_size) noexcept {
  if (source == nullptr) {
    fail_null(EINVAL, "%s: null source", fn);
    return Block{};
  }
  if (region_size == 0) {
    fail_null(EINVAL, "%s: region size 0", fn);
    return Block{};
  }
  SourceError why;
  const Block r = source->obtain(region_size, 1, &why);
  if (r.ptr == nullptr)
    fail_null(ENOMEM, "%s: the %s source has no region of %zu bytes: %s", fn, source->name(),
              region_size, why.message());
  return r;
}

void give_back(ctxalloc_source* source, Block region) noexcept {
  SourceError why;
  if (source != nullptr && region.ptr != nullptr) source->release(region, &why);
}

// Makes AllocatorHandle<A>(name, args...) over a region taken from source; on failure
// the region goes back and the reason is recorded.
template <class A, class... Args>
ctxalloc_allocator* make_on_region(const char* fn, const char* name, ctxalloc_source* source,
                                   Block region, Args&&... args) noexcept {
  auto* h = detail::mapped_new<AllocatorHandle<A>>(name, std::forward<Args>(args)...);
  if (h == nullptr) {
    give_back(source, region);
    return fail_null(ENOMEM, "%s: no memory for the handle", fn);
  }
  return adopt(h, source, region);
}

void destroy_allocator(ctxalloc_allocator* h) noexcept {
  ctxalloc_source* source = h->source;
  const Block region = h->region;
  detail::mapped_delete(h);  // first: the allocator may give segments back to the source
  give_back(source, region);
  if (source != nullptr) source->users.fetch_sub(1, std::memory_order_relaxed);
}

// Why an allocation of `layout` failed, for the message.
void* refused(const char* fn, const ctxalloc_allocator* a, Layout layout,
              std::uint64_t misuses_before) noexcept {
  const Stats s = a->stats();
  if (s.misuses != misuses_before)
    return fail_null(EINVAL, "%s: %s allocator refused the request as misuse", fn, a->name());
  return fail_null(ENOMEM,
                   "%s: %zu bytes aligned %zu do not fit in %s allocator (%llu of %llu bytes in "
                   "use; larger than it serves, or no room left)",
                   fn, layout.size, layout.align, a->name(),
                   static_cast<unsigned long long>(s.bytes_in_use),
                   static_cast<unsigned long long>(s.capacity));
}

void* allocate_with(const char* fn, ctxalloc_allocator* a, std::size_t size, std::size_t align,
                    size_t* usable, bool zeroed) noexcept {
  if (a == nullptr) return fail_null(EINVAL, "%s: null allocator", fn);
  const std::optional<Layout> layout = layout_of(size, align);
  if (!layout)
    return fail_null(EINVAL, "%s: alignment %zu is not a power of two of at most 1 GiB", fn, align);
  const std::uint64_t misuses = a->stats().misuses;
  const Block b = zeroed ? a->allocate_zeroed(*layout) : a->allocate(*layout);
  if (b.ptr == nullptr) return refused(fn, a, *layout, misuses);
  if (usable != nullptr) *usable = b.size;
  return b.ptr;
}

// Runs a deallocation and turns a misuse the allocator reported into -EINVAL.
template <class Free>
int free_with(const char* fn, ctxalloc_allocator* a, void* p, Free&& free) noexcept {
  if (a == nullptr) return fail(EINVAL, "%s: null allocator", fn);
  if (p == nullptr) return 0;
  const bool inside = a->contains(p);
  const std::uint64_t misuses = a->stats().misuses;
  free();
  if (a->stats().misuses == misuses) return 0;
  return fail(EINVAL, "%s: %s allocator refused %p: %s", fn, a->name(), p,
              inside ? "freed before, not the start of a block, or a size that does not match"
                     : "not in its memory (foreign pointer)");
}

// Copies a check's message into the caller's buffer (truncated, NUL-terminated).
void copy_message(const char* text, char* out, std::size_t cap) noexcept {
  if (out == nullptr || cap == 0) return;
  std::size_t n = std::strlen(text);
  if (n >= cap) n = cap - 1;
  std::memcpy(out, text, n);
  out[n] = '\0';
}

template <class H>
int check_with(const char* fn, const H* h, char* message, std::size_t cap) noexcept {
  copy_message("", message, cap);
  if (h == nullptr) return fail(EINVAL, "%s: null handle", fn);
  try {
    const CheckResult r = h->check_invariants();
    if (r) return 0;
    copy_message(r.error().c_str(), message, cap);
    return fail(EUCLEAN, "%s: %.280s", fn, r.error().c_str());
  } catch (...) {  // std::bad_alloc from building the message: never crosses into C
    return fail(ENOMEM, "%s: no memory to run the check", fn);
  }
}

// The segment provider of a size-class allocator: 4 MiB segments aligned to 4 MiB.
Block obtain_segment(void* source) noexcept {
  SourceError why;
  return static_cast<ctxalloc_source*>(source)->obtain(SizeClassAllocator::kSegmentSize,
                                                       SizeClassAllocator::kSegmentSize, &why);
}
void release_segment(void* source, Block segment) noexcept {
  SourceError why;
  static_cast<ctxalloc_source*>(source)->release(segment, &why);
}

// The context options from C (0: defaults) for a region of region_size bytes.
std::optional<ContextOptions> context_options_of(const ctxalloc_context_options* o,
                                                 std::size_t region_size) noexcept {
  ContextOptions c;
  if (o == nullptr) return c;
  if (o->bitset_block_size != 0) c.bitset_block_size = o->bitset_block_size;
  if (o->tree_min_class != 0 || o->tree_max_class != 0) {
    const TreeConfig dflt = ContextAllocator::tree_config_for(region_size);
    const std::size_t min = o->tree_min_class != 0 ? o->tree_min_class : dflt.min_class();
    const std::size_t max = o->tree_max_class != 0 ? o->tree_max_class : dflt.max_class();
    c.tree = TreeConfig::make(min, max);
    if (!c.tree) return std::nullopt;
  }
  return c;
}

const char* context_name(ContextKind k) noexcept {
  switch (k) {
    case ContextKind::bump:
      return "context(bump)";
    case ContextKind::bitset:
      return "context(bitset)";
    case ContextKind::tree:
      return "context(tree)";
    case ContextKind::growing:
      return "context(growing)";
    case ContextKind::none:
      break;
  }
  return "context(none)";
}

}  // namespace

extern "C" {

// ------------------------------------------------------------------------ errors, misuse

const char* ctxalloc_last_error(void) noexcept {
  return capi::last_error();
}

int ctxalloc_set_misuse_policy(int policy) noexcept {
  if (policy != CTXALLOC_MISUSE_ABORT && policy != CTXALLOC_MISUSE_COUNT)
    return fail(EINVAL, "ctxalloc_set_misuse_policy: %d is not a policy", policy);
  set_misuse_policy(policy == CTXALLOC_MISUSE_ABORT ? MisusePolicy::abort : MisusePolicy::count);
  return 0;
}

int ctxalloc_get_misuse_policy(void) noexcept {
  return misuse_policy() == MisusePolicy::abort ? CTXALLOC_MISUSE_ABORT : CTXALLOC_MISUSE_COUNT;
}

uint64_t ctxalloc_misuse_count(void) noexcept {
  return misuse_count();
}

// ------------------------------------------------------------------------ sources

void ctxalloc_mmap_options_init(ctxalloc_mmap_options* options) noexcept {
  if (options != nullptr) std::memset(options, 0, sizeof *options);  // every default is 0
}

int ctxalloc_mmap_options_add_node(ctxalloc_mmap_options* options, unsigned node) noexcept {
  if (options == nullptr) return fail(EINVAL, "ctxalloc_mmap_options_add_node: null options");
  if (node >= CTXALLOC_MAX_NUMA_NODES)
    return fail(EINVAL, "ctxalloc_mmap_options_add_node: node %u is not below %u", node,
                CTXALLOC_MAX_NUMA_NODES);
  options->numa_nodes[node / 64] |= std::uint64_t{1} << (node % 64);
  return 0;
}

ctxalloc_source* ctxalloc_source_create_mmap(const ctxalloc_mmap_options* options) noexcept {
  constexpr const char* fn = "ctxalloc_source_create_mmap";
  const std::optional<MapOptions> m = map_options_of(options);
  if (!m) return fail_null(EINVAL, "%s: an option holds a value outside its enum", fn);
  return make_source<MemoryMapSource>(fn, "mmap", *m);
}

ctxalloc_source* ctxalloc_source_create_region(void* memory, size_t size,
                                               size_t granularity) noexcept {
  constexpr const char* fn = "ctxalloc_source_create_region";
  if (memory == nullptr || size == 0) return fail_null(EINVAL, "%s: null or empty region", fn);
  return make_source<RegionSource>(fn, "region", Block{static_cast<std::byte*>(memory), size},
                                   granularity == 0 ? page_size() : granularity);
}

ctxalloc_source* ctxalloc_source_create_arena(ctxalloc_source* parent, size_t block_size,
                                              size_t slab_bytes) noexcept {
  constexpr const char* fn = "ctxalloc_source_create_arena";
  if (parent == nullptr) return fail_null(EINVAL, "%s: null parent", fn);
  ArenaOptions o;
  o.block_size = block_size;
  o.slab_bytes = slab_bytes;
  ctxalloc_source* h =
      make_source<ArenaSource<capi::ParentRef>>(fn, "arena", capi::ParentRef{parent}, o);
  if (h != nullptr) {
    h->parent = parent;
    parent->users.fetch_add(1, std::memory_order_relaxed);
  }
  return h;
}

int ctxalloc_source_destroy(ctxalloc_source* source) noexcept {
  if (source == nullptr) return 0;
  const long users = source->users.load(std::memory_order_relaxed);
  if (users != 0)
    return fail(EBUSY,
                "ctxalloc_source_destroy: the %s source still has %ld allocators or "
                "arenas on it",
                source->name(), users);
  ctxalloc_source* parent = source->parent;
  detail::mapped_delete(source);  // an arena gives its slabs back to the parent here
  if (parent != nullptr) parent->users.fetch_sub(1, std::memory_order_relaxed);
  return 0;
}

void* ctxalloc_source_obtain(ctxalloc_source* source, size_t size, size_t align,
                             size_t* actual_size) noexcept {
  constexpr const char* fn = "ctxalloc_source_obtain";
  if (source == nullptr) return fail_null(EINVAL, "%s: null source", fn);
  if (size == 0) return fail_null(EINVAL, "%s: size 0", fn);
  if (align != 0 && !layout_of(size, align))
    return fail_null(EINVAL, "%s: alignment %zu is not a power of two of at most 1 GiB", fn, align);
  SourceError why;
  const Block b = source->obtain(size, align, &why);
  if (b.ptr == nullptr) {
    const int code = why.code() == SourceErrc::bad_size ||
                             why.code() == SourceErrc::bad_alignment ||
                             why.code() == SourceErrc::bad_option
                         ? EINVAL
                         : ENOMEM;
    return fail_null(code, "%s: %s", fn, why.message());
  }
  if (actual_size != nullptr) *actual_size = b.size;
  return b.ptr;
}

int ctxalloc_source_release(ctxalloc_source* source, void* region, size_t size) noexcept {
  constexpr const char* fn = "ctxalloc_source_release";
  if (source == nullptr) return fail(EINVAL, "%s: null source", fn);
  SourceError why;
  if (!source->release(Block{static_cast<std::byte*>(region), size}, &why))
    return fail(EINVAL, "%s: %s", fn, why.message());
  return 0;
}

int ctxalloc_source_get_stats(const ctxalloc_source* source, ctxalloc_source_stats* out) noexcept {
  if (source == nullptr || out == nullptr)
    return fail(EINVAL, "ctxalloc_source_get_stats: null argument");
  const SourceStats s = source->stats();
  out->obtains = s.obtains;
  out->releases = s.releases;
  out->failures = s.failures;
  out->misuses = s.misuses;
  out->bytes_held = s.bytes_held;
  out->peak_bytes = s.peak_bytes;
  out->capacity = s.capacity;
  out->upstream_bytes = s.upstream_bytes;
  return 0;
}

const char* ctxalloc_source_name(const ctxalloc_source* source) noexcept {
  return source == nullptr ? "" : source->name();
}

int ctxalloc_source_check_invariants(const ctxalloc_source* source, char* message,
                                     size_t capacity) noexcept {
  return check_with("ctxalloc_source_check_invariants", source, message, capacity);
}

// ------------------------------------------------------------------------ allocators

ctxalloc_allocator* ctxalloc_bump_create(ctxalloc_source* source, size_t region_size) noexcept {
  constexpr const char* fn = "ctxalloc_bump_create";
  const Block region = take_region(fn, source, region_size);
  if (region.ptr == nullptr) return nullptr;
  return make_on_region<BumpAllocator>(fn, "bump", source, region, region);
}

ctxalloc_allocator* ctxalloc_bitset_create(ctxalloc_source* source, size_t region_size,
                                           size_t block_size) noexcept {
  constexpr const char* fn = "ctxalloc_bitset_create";
  const Block region = take_region(fn, source, region_size);
  if (region.ptr == nullptr) return nullptr;
  const BitSetAllocator::ConfigError e = BitSetAllocator::validate(region, block_size);
  if (e != BitSetAllocator::ConfigError::none) {
    give_back(source, region);
    return fail_null(EINVAL, "%s: blocks of %zu bytes in a region of %zu: %s", fn, block_size,
                     region.size, BitSetAllocator::to_string(e));
  }
  return make_on_region<BitSetAllocator>(fn, "bitset", source, region, region, block_size);
}

ctxalloc_allocator* ctxalloc_tree_create(ctxalloc_source* source, size_t region_size,
                                         size_t min_class, size_t max_class) noexcept {
  constexpr const char* fn = "ctxalloc_tree_create";
  const TreeConfig dflt;
  const std::optional<TreeConfig> cfg = TreeConfig::make(
      min_class != 0 ? min_class : dflt.min_class(), max_class != 0 ? max_class : dflt.max_class());
  if (!cfg)
    return fail_null(
        EINVAL,
        "%s: classes %zu..%zu: powers of two from 32 B, smallest <= largest <= 64 GiB, at "
        "most 30 classes",
        fn, min_class, max_class);
  const Block region = take_region(fn, source, region_size);
  if (region.ptr == nullptr) return nullptr;
  ctxalloc_allocator* h =
      make_on_region<ContextTree>(fn, "tree", source, region, *cfg);  // no region yet
  if (h == nullptr) return nullptr;
  if (!static_cast<AllocatorHandle<ContextTree>*>(h)->get().add_region(region)) {
    destroy_allocator(h);
    return fail_null(EINVAL,
                     "%s: a region of %zu bytes cannot hold the tree's metadata and a "
                     "block of %zu bytes",
                     fn, region.size, cfg->min_class());
  }
  return h;
}

ctxalloc_allocator* ctxalloc_size_class_create(ctxalloc_source* source,
                                               size_t max_segments) noexcept {
  constexpr const char* fn = "ctxalloc_size_class_create";
  if (source == nullptr) return fail_null(EINVAL, "%s: null source", fn);
  const SegmentProvider provider{source, &obtain_segment, &release_segment};
  return make_on_region<SizeClassAllocator>(fn, "size_class", source, Block{}, provider,
                                            max_segments);
}

ctxalloc_allocator* ctxalloc_mmap_allocator_create(const ctxalloc_mmap_options* options) noexcept {
  constexpr const char* fn = "ctxalloc_mmap_allocator_create";
  const std::optional<MapOptions> m = map_options_of(options);
  if (!m) return fail_null(EINVAL, "%s: an option holds a value outside its enum", fn);
  if (const SourceError e = MemoryMapSource::validate(*m); !e.ok())
    return fail_null(EINVAL, "%s: %s", fn, e.message());
  return make_on_region<MemoryMapAllocator>(fn, "mmap", nullptr, Block{}, *m);
}

void ctxalloc_context_options_init(ctxalloc_context_options* options) noexcept {
  if (options != nullptr) std::memset(options, 0, sizeof *options);
}

ctxalloc_allocator* ctxalloc_context_allocator_create(
    ctxalloc_source* source, int lifetime, size_t region_size,
    const ctxalloc_context_options* options) noexcept {
  constexpr const char* fn = "ctxalloc_context_allocator_create";
  if (lifetime < CTXALLOC_LIFETIME_SHORT || lifetime > CTXALLOC_LIFETIME_LONG)
    return fail_null(EINVAL, "%s: %d is not a lifetime (short 0, medium 1, long 2)", fn, lifetime);
  const std::optional<ContextOptions> o = context_options_of(options, region_size);
  if (!o)
    return fail_null(EINVAL,
                     "%s: tree classes %zu..%zu are not powers of two from 32 B, smallest first",
                     fn, options->tree_min_class, options->tree_max_class);
  const Block region = take_region(fn, source, region_size);
  if (region.ptr == nullptr) return nullptr;
  const auto life = static_cast<Lifetime>(lifetime);
  const ContextAllocator::ConfigError e = ContextAllocator::validate(life, region, *o);
  if (e != ContextAllocator::ConfigError::none) {
    give_back(source, region);
    return fail_null(EINVAL, "%s: %s context over %zu bytes: %s", fn, to_string(life), region.size,
                     ContextAllocator::to_string(e));
  }
  return make_on_region<ContextAllocator>(fn, context_name(kind_for(life)), source, region, life,
                                          region, *o);
}

int ctxalloc_allocator_destroy(ctxalloc_allocator* allocator) noexcept {
  if (allocator != nullptr) destroy_allocator(allocator);
  return 0;
}

const char* ctxalloc_allocator_name(const ctxalloc_allocator* allocator) noexcept {
  return allocator == nullptr ? "" : allocator->name();
}

void* ctxalloc_allocate(ctxalloc_allocator* allocator, size_t size, size_t align,
                        size_t* usable_size) noexcept {
  return allocate_with("ctxalloc_allocate", allocator, size, align, usable_size, false);
}

void* ctxalloc_allocate_zeroed(ctxalloc_allocator* allocator, size_t size, size_t align,
                               size_t* usable_size) noexcept {
  return allocate_with("ctxalloc_allocate_zeroed", allocator, size, align, usable_size, true);
}

void* ctxalloc_reallocate(ctxalloc_allocator* allocator, void* block, size_t old_size,
                          size_t new_size, size_t align, unsigned flags,
                          size_t* usable_size) noexcept {
  constexpr const char* fn = "ctxalloc_reallocate";
  if (allocator == nullptr) return fail_null(EINVAL, "%s: null allocator", fn);
  if ((flags & ~CTXALLOC_REALLOC_NO_MOVE) != 0)
    return fail_null(EINVAL, "%s: unknown flags %#x", fn, flags);
  const std::optional<Layout> layout = layout_of(new_size, align);
  if (!layout)
    return fail_null(EINVAL, "%s: alignment %zu is not a power of two of at most 1 GiB", fn, align);
  if (block == nullptr) return allocate_with(fn, allocator, new_size, align, usable_size, false);
  if (old_size == 0 && !is_zero_size_sentinel(block)) {
    old_size = allocator->allocated_size(block);
    if (old_size == 0) {
      if (!allocator->contains(block)) {
        report_misuse(Misuse::foreign_pointer, allocator->name(), "reallocate", block);
        return fail_null(EINVAL, "%s: %p is not in %s allocator's memory (foreign pointer)", fn,
                         block, allocator->name());
      }
      return fail_null(EINVAL,
                       "%s: %p is not a live block %s allocator can recover the size of "
                       "(freed, interior, or an older bump block): pass old_size",
                       fn, block, allocator->name());
    }
  }
  const Move move = (flags & CTXALLOC_REALLOC_NO_MOVE) != 0 ? Move::forbidden : Move::allowed;
  const Block old{static_cast<std::byte*>(block), old_size};
  const std::uint64_t misuses = allocator->stats().misuses;
  const Block r = new_size >= old_size ? allocator->grow(old, *layout, move)
                                       : allocator->shrink(old, *layout, move);
  if (r.ptr == nullptr) {
    if (allocator->stats().misuses != misuses)
      return fail_null(EINVAL,
                       "%s: %s allocator refused %p of %zu bytes: not a live block of that "
                       "size (misuse)",
                       fn, allocator->name(), block, old_size);
    if (move == Move::forbidden)
      return fail_null(ENOMEM, "%s: %s allocator cannot resize %p from %zu to %zu bytes in place",
                       fn, allocator->name(), block, old_size, new_size);
    return fail_null(ENOMEM, "%s: %s allocator has no room for %zu bytes aligned %zu", fn,
                     allocator->name(), new_size, layout->align);
  }
  if (usable_size != nullptr) *usable_size = r.size;
  return r.ptr;
}

int ctxalloc_free(ctxalloc_allocator* allocator, void* block) noexcept {
  return free_with("ctxalloc_free", allocator, block, [&] { allocator->free_unsized(block); });
}

int ctxalloc_free_sized(ctxalloc_allocator* allocator, void* block, size_t size,
                        size_t align) noexcept {
  constexpr const char* fn = "ctxalloc_free_sized";
  const std::optional<Layout> layout = layout_of(size, align);
  if (!layout)
    return fail(EINVAL, "%s: alignment %zu is not a power of two of at most 1 GiB", fn, align);
  return free_with(fn, allocator, block, [&] {
    allocator->deallocate(Block{static_cast<std::byte*>(block), size}, layout->align);
  });
}

int ctxalloc_contains(const ctxalloc_allocator* allocator, const void* p) noexcept {
  if (allocator == nullptr) return fail(EINVAL, "ctxalloc_contains: null allocator");
  return allocator->contains(p) ? 1 : 0;
}

size_t ctxalloc_usable_size(const ctxalloc_allocator* allocator, const void* p) noexcept {
  if (allocator == nullptr || p == nullptr) return 0;
  return allocator->allocated_size(p);
}

int ctxalloc_reset(ctxalloc_allocator* allocator) noexcept {
  if (allocator == nullptr) return fail(EINVAL, "ctxalloc_reset: null allocator");
  if (!allocator->reset())
    return fail(ENOTSUP,
                "ctxalloc_reset: a %s allocator cannot forget its blocks at once (bump "
                "and context allocators can)",
                allocator->name());
  return 0;
}

int ctxalloc_get_stats(const ctxalloc_allocator* allocator, ctxalloc_stats* out) noexcept {
  if (allocator == nullptr || out == nullptr)
    return fail(EINVAL, "ctxalloc_get_stats: null argument");
  const Stats s = allocator->stats();
  out->allocations = s.allocations;
  out->deallocations = s.deallocations;
  out->grows = s.grows;
  out->shrinks = s.shrinks;
  out->failures = s.failures;
  out->misuses = s.misuses;
  out->bytes_in_use = s.bytes_in_use;
  out->peak_bytes = s.peak_bytes;
  out->capacity = s.capacity;
  return 0;
}

int ctxalloc_check_invariants(const ctxalloc_allocator* allocator, char* message,
                              size_t capacity) noexcept {
  return check_with("ctxalloc_check_invariants", allocator, message, capacity);
}

}  // extern "C"
