// The memory-sources layer (above core): where pools get their memory. mmap with NUMA
// policies and hugepages, caller-supplied regions, arenas of fixed blocks, a shared
// (locked) source, and what the kernel says about nodes and hugepages.
// One header for the whole layer (an umbrella): for users and for layers above. The
// layer's own files include the headers they need, never this one.
#pragma once

#include "ctxalloc/sources/arena_source.h"
#include "ctxalloc/sources/kernel_info.h"
#include "ctxalloc/sources/mmap_source.h"
#include "ctxalloc/sources/node_topology.h"
#include "ctxalloc/sources/numa_policy.h"
#include "ctxalloc/sources/region_source.h"
#include "ctxalloc/sources/shared_source.h"
