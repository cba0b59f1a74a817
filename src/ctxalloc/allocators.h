// The allocators layer (above sources): each an Allocator over memory it is given or
// takes from a source. Bump, bit set, tree, size classes, context (by lifetime), one
// mapping per block, the C library's malloc, and the null allocator that refuses all.
// One header for the whole layer (an umbrella): for users and for layers above. The
// layer's own files include the headers they need, never this one.
#pragma once

#include "ctxalloc/allocators/bitset_allocator.h"
#include "ctxalloc/allocators/bump_allocator.h"
#include "ctxalloc/allocators/context_allocator.h"
#include "ctxalloc/allocators/malloc_allocator.h"
#include "ctxalloc/allocators/memory_map_allocator.h"
#include "ctxalloc/allocators/null_allocator.h"
#include "ctxalloc/allocators/size_class_allocator.h"
#include "ctxalloc/allocators/tree_allocator.h"
#include "ctxalloc/allocators/tree_config.h"
