#include "ctxalloc/sources/detail/mapping_index.h"

#include <boost/intrusive/rbtree_algorithms.hpp>
#include <new>

#include "ctxalloc/sources/os_memory.h"

namespace ctxalloc::detail {
namespace {

struct NodeTraits {
  using node = MappingNode;
  using node_ptr = MappingNode*;
  using const_node_ptr = const MappingNode*;
  using color = std::uintptr_t;
  static node_ptr get_parent(const_node_ptr n) { return n->parent; }
  static void set_parent(node_ptr n, node_ptr p) { n->parent = p; }
  static node_ptr get_left(const_node_ptr n) { return n->left; }
  static void set_left(node_ptr n, node_ptr l) { n->left = l; }
  static node_ptr get_right(const_node_ptr n) { return n->right; }
  static void set_right(node_ptr n, node_ptr r) { n->right = r; }
  static color get_color(const_node_ptr n) { return n->red; }
  static void set_color(node_ptr n, color c) { n->red = c; }
  static color black() { return 0; }
  static color red() { return 1; }
};

using Tree = boost::intrusive::rbtree_algorithms<NodeTraits>;

std::uintptr_t addr(const void* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p);
}

// Orders nodes by start address; also compares a node with a bare address (lookups).
struct ByStart {
  bool operator()(const MappingNode* a, const MappingNode* b) const noexcept {
    return a->m.start < b->m.start;
  }
  bool operator()(std::uintptr_t key, const MappingNode* n) const noexcept {
    return key < addr(n->m.start);
  }
  bool operator()(const MappingNode* n, std::uintptr_t key) const noexcept {
    return addr(n->m.start) < key;
  }
};

// Pools start at 16 KiB (255 nodes) and double up to 1 MiB per slab: few mmap calls for
// many mappings, little waste for few.
constexpr std::size_t kFirstSlab = 16 * 1024;
constexpr std::size_t kLargestSlab = 1024 * 1024;

}  // namespace

struct MappingIndex::Slab {
  Slab* next;
  std::size_t bytes;
  std::size_t nodes;
  MappingNode* first_node() noexcept {
    return reinterpret_cast<MappingNode*>(reinterpret_cast<std::byte*>(this) + sizeof(MappingNode));
  }
  const MappingNode* first_node() const noexcept { return const_cast<Slab*>(this)->first_node(); }
};
MappingIndex::MappingIndex() noexcept {
  static_assert(sizeof(Slab) <= sizeof(MappingNode), "the slab header takes one node slot");
  Tree::init_header(&header_);
}

MappingIndex::~MappingIndex() {
  for (Slab* s = slabs_; s != nullptr;) {
    Slab* next = s->next;
    os_unmap(s, s->bytes);
    s = next;
  }
}

bool MappingIndex::reserve() noexcept {
  if (free_ != nullptr) return true;
  const std::size_t bytes =
      pool_bytes_ == 0 ? kFirstSlab : (pool_bytes_ < kLargestSlab ? pool_bytes_ : kLargestSlab);
  void* p = os_map_rw(bytes);
  if (p == nullptr) return false;
  // The first node-sized slot holds the slab header; the rest become free nodes.
  auto* slab = new (p) Slab{slabs_, bytes, bytes / sizeof(MappingNode) - 1};
  slabs_ = slab;
  MappingNode* nodes = slab->first_node();
  for (std::size_t i = slab->nodes; i-- > 0;) {
    MappingNode* n = new (&nodes[i]) MappingNode{};
    n->parent = free_;
    free_ = n;
  }
  pool_bytes_ += bytes;
  pool_nodes_ += slab->nodes;
  return true;
}

void MappingIndex::insert(const Mapping& m) noexcept {
  MappingNode* n = free_;
  free_ = n->parent;
  *n = MappingNode{};
  n->m = m;
  Tree::insert_equal_upper_bound(&header_, n, ByStart{});
  ++count_;
  bytes_ += m.size;
}

MappingNode* MappingIndex::node_of(const void* start) const noexcept {
  auto* h = const_cast<MappingNode*>(&header_);
  MappingNode* n = Tree::find(h, addr(start), ByStart{});
  return n == h ? nullptr : n;
}

const Mapping* MappingIndex::find(const void* start) const noexcept {
  const MappingNode* n = node_of(start);
  return n == nullptr ? nullptr : &n->m;
}

const Mapping* MappingIndex::find_containing(const void* p) const noexcept {
  auto* h = const_cast<MappingNode*>(&header_);
  MappingNode* after = Tree::upper_bound(h, addr(p), ByStart{});  // first start > p
  if (after == Tree::begin_node(h)) return nullptr;
  const MappingNode* n = Tree::prev_node(after);
  return addr(p) < addr(n->m.end()) ? &n->m : nullptr;
}

bool MappingIndex::erase(const void* start) noexcept {
  MappingNode* n = node_of(start);
  if (n == nullptr) return false;
  Tree::erase(&header_, n);
  --count_;
  bytes_ -= n->m.size;
  *n = MappingNode{};
  n->parent = free_;
  free_ = n;
  return true;
}

void MappingIndex::update(const void* old_start, const Mapping& m) noexcept {
  MappingNode* n = node_of(old_start);
  if (n == nullptr) return;
  bytes_ = bytes_ - n->m.size + m.size;
  if (m.start == n->m.start) {
    n->m = m;  // same key: the tree order is unchanged
    return;
  }
  Tree::erase(&header_, n);
  *n = MappingNode{};
  n->m = m;
  Tree::insert_equal_upper_bound(&header_, n, ByStart{});
}

const Mapping* MappingIndex::first() const noexcept {
  const MappingNode* n = Tree::begin_node(&header_);
  return n == &header_ ? nullptr : &n->m;
}

const Mapping* MappingIndex::next(const Mapping* m) const noexcept {
  auto* n = reinterpret_cast<MappingNode*>(reinterpret_cast<std::byte*>(const_cast<Mapping*>(m)) -
                                           offsetof(MappingNode, m));
  const MappingNode* after = Tree::next_node(n);
  return after == &header_ ? nullptr : &after->m;
}

bool MappingIndex::in_pool(const MappingNode* n) const noexcept {
  for (const Slab* s = slabs_; s != nullptr; s = s->next) {
    const MappingNode* first = s->first_node();
    if (n >= first && n < first + s->nodes) return true;
  }
  return false;
}

namespace {

// Black height of the subtree at n, or -1 (with *bad set) when a rule is broken. A
// red-black tree of 2^64 nodes is at most 128 deep: deeper means a corrupted cycle.
int black_height(const MappingNode* n, const MappingNode* parent, const char** bad,
                 unsigned depth = 0) {
  if (n == nullptr) return 1;
  if (depth > 128) {
    *bad = "deeper than any red-black tree can be (a cycle)";
    return -1;
  }
  if (n->parent != parent) {
    *bad = "a child's parent link does not point back";
    return -1;
  }
  if (n->red != 0 &&
      ((n->left != nullptr && n->left->red != 0) || (n->right != nullptr && n->right->red != 0))) {
    *bad = "a red node has a red child";
    return -1;
  }
  const int l = black_height(n->left, n, bad, depth + 1);
  const int r = l < 0 ? -1 : black_height(n->right, n, bad, depth + 1);
  if (l < 0 || r < 0) return -1;
  if (l != r) {
    *bad = "black heights differ";
    return -1;
  }
  return l + (n->red == 0 ? 1 : 0);
}

}  // namespace

CheckResult MappingIndex::check_tree(const char* who) const {
  const MappingNode* root = header_.parent;
  if (root != nullptr) {
    CTXALLOC_INVARIANT(root->red == 0, who, ": the tree's root is red");
    const char* bad = nullptr;
    CTXALLOC_INVARIANT(black_height(root, &header_, &bad) > 0, who, ": red-black tree: ", bad);
  }
  std::size_t n = 0, bytes = 0;
  const Mapping* prev = nullptr;
  for (const Mapping* m = first(); m != nullptr; m = next(m)) {
    CTXALLOC_INVARIANT(n < pool_nodes_, who, ": the tree holds more nodes than the pool (a cycle)");
    CTXALLOC_INVARIANT(m->size > 0 && m->unit > 0 && m->page > 0, who, ": mapping ", m->start,
                       " has size ", m->size, ", unit ", m->unit, ", page ", m->page);
    CTXALLOC_INVARIANT(m->size % m->unit == 0 && m->unit % m->page == 0, who, ": mapping ",
                       m->start, " size ", m->size, " is not a multiple of its unit ", m->unit);
    CTXALLOC_INVARIANT(addr(m->start) % m->page == 0, who, ": mapping ", m->start,
                       " is not aligned to its page size ", m->page);
    CTXALLOC_INVARIANT(addr(m->start) + m->size > addr(m->start), who, ": mapping ", m->start,
                       " wraps around the address space");
    if (prev != nullptr)
      CTXALLOC_INVARIANT(prev->end() <= m->start, who, ": mapping ", prev->start, " (", prev->size,
                         " bytes) overlaps or is out of order with ", m->start);
    prev = m;
    ++n;
    bytes += m->size;
  }
  CTXALLOC_INVARIANT(n == count_, who, ": the tree holds ", n, " mappings, the count says ",
                     count_);
  CTXALLOC_INVARIANT(bytes == bytes_, who, ": the mappings hold ", bytes, " bytes, the index says ",
                     bytes_);
  return CheckResult::ok();
}

CheckResult MappingIndex::check_pool(const char* who) const {
  std::size_t slab_nodes = 0, slab_bytes = 0;
  for (const Slab* s = slabs_; s != nullptr; s = s->next) {
    CTXALLOC_INVARIANT(s->nodes == s->bytes / sizeof(MappingNode) - 1, who, ": pool slab ",
                       static_cast<const void*>(s), " claims ", s->nodes, " nodes in ", s->bytes,
                       " bytes");
    slab_nodes += s->nodes;
    slab_bytes += s->bytes;
  }
  CTXALLOC_INVARIANT(slab_nodes == pool_nodes_ && slab_bytes == pool_bytes_, who,
                     ": pool slabs hold ", slab_nodes, " nodes, the index counts ", pool_nodes_);
  std::size_t free_nodes = 0;
  for (const MappingNode* n = free_; n != nullptr; n = n->parent) {
    CTXALLOC_INVARIANT(free_nodes < pool_nodes_, who, ": the free node list has a cycle");
    CTXALLOC_INVARIANT(in_pool(n), who, ": free node ", static_cast<const void*>(n),
                       " is outside the pool");
    ++free_nodes;
  }
  for (const Mapping* m = first(); m != nullptr; m = next(m)) {
    const auto* n = reinterpret_cast<const MappingNode*>(reinterpret_cast<const std::byte*>(m) -
                                                         offsetof(MappingNode, m));
    CTXALLOC_INVARIANT(in_pool(n), who, ": tree node ", static_cast<const void*>(n),
                       " is outside the pool");
  }
  CTXALLOC_INVARIANT(free_nodes + count_ == pool_nodes_, who, ": ", free_nodes, " free + ", count_,
                     " live nodes, but the pool has ", pool_nodes_);
  return CheckResult::ok();
}

CheckResult MappingIndex::check(const char* who) const {
  if (CheckResult r = check_tree(who); !r) return r;
  return check_pool(who);
}

}  // namespace ctxalloc::detail
