// Forwarding header: NullAllocator moved to <ctxalloc/allocators/null_allocator.h> (it is an
// allocator, not an adaptor). Kept because this path was installed: programs built
// against an installed ctxalloc include it. New code includes the allocators/ header.
#pragma once

#include "ctxalloc/allocators/null_allocator.h"
