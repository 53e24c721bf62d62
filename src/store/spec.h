// SPEC resolution: how users name a revision on the command line and in
// NBD export names. A SPEC is tried, in this order, as
//   - "last" or "latest": the newest revision;
//   - a number N: the N-th newest (0 = newest, 1 = the one before, ...);
//   - a revision id;
//   - a tag: the newest revision carrying it.
// Pure functions; thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "store/revision.h"
#include "store/status.h"

namespace backy::store {

// `revisions` must be sorted oldest first (as Repository::Revisions()
// returns them). Returns the position of the match; NotFound names the
// SPEC when nothing matches.
Result<size_t> ResolveSpec(const std::vector<Revision>& revisions,
                           std::string_view spec);

}  // namespace backy::store
