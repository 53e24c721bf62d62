#include "backup/expire.h"

#include <algorithm>
#include <map>

namespace backy::backup {

std::vector<ExpireChange> PlanExpire(
    const std::vector<store::Revision>& revisions,
    const store::Schedule& schedule) {
  std::vector<ExpireChange> out;
  if (schedule.empty()) return out;
  const size_t n = revisions.size();
  const size_t protected_from =
      n > schedule.min_keep ? n - schedule.min_keep : 0;
  std::map<std::string, uint32_t> seen;  // tag → newer revisions carrying it
  std::vector<ExpireChange> changes(n);
  for (size_t i = n; i-- > 0;) {
    const store::Revision& r = revisions[i];
    ExpireChange& c = changes[i];
    c.id = r.id;
    for (const auto& tag : r.tags) {
      const uint32_t rank = seen[tag]++;
      if (tag.starts_with("manual:")) continue;
      auto it = schedule.tags.find(tag);
      if (it == schedule.tags.end() || rank >= it->second.keep) {
        c.removed_tags.insert(tag);
      }
    }
    if (i >= protected_from) {
      c.removed_tags.clear();
      continue;
    }
    c.remove_revision = c.removed_tags.size() == r.tags.size();
  }
  for (auto& c : changes) {
    if (!c.removed_tags.empty() || c.remove_revision)
      out.push_back(std::move(c));
  }
  return out;
}

Status ExecuteExpire(
    store::Repository& repo, const std::vector<store::Revision>& revisions,
    const std::vector<ExpireChange>& plan,
    const std::function<void(const ExpireChange&)>& before_each) {
  for (const ExpireChange& change : plan) {
    if (before_each) before_each(change);
    Status s;
    if (change.remove_revision) {
      s = repo.Forget(change.id);
    } else {
      auto rev = std::find_if(
          revisions.begin(), revisions.end(),
          [&](const store::Revision& r) { return r.id == change.id; });
      if (rev == revisions.end()) {
        return Status::NotFound("expire: no such revision", change.id);
      }
      store::Revision updated = *rev;
      for (const auto& t : change.removed_tags) updated.tags.erase(t);
      s = repo.UpdateMetadata(updated);
    }
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace backy::backup
