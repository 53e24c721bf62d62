#include "store/rados_pool.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace backy::store {

Status RadosError(int r, std::string_view what, std::string_view object) {
  const int err = r < 0 ? -r : r;
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status::NotFound(msg, object);
    case EEXIST:
    case EINVAL:
    case ENAMETOOLONG:
    case ERANGE:
      return Status::InvalidArgument(msg, object);
    case EBUSY:
    case EWOULDBLOCK:
      return Status::Busy(msg, object);
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(msg, object);
    case EINTR:
      return Status::Interrupted(msg, object);
    case EOPNOTSUPP:
      return Status::NotSupported(msg, object);
    case EPERM:
    case EACCES:
      return Status::IOError(msg + " (check client id, keyring and caps)",
                             object);
    default:
      return Status::IOError(msg, object);
  }
}

RadosPool::~RadosPool() {
  if (io_ != nullptr) rados_ioctx_destroy(io_);
  if (cluster_ != nullptr) rados_shutdown(cluster_);
}

std::string RadosPool::Name() const {
  return ns_.empty() ? pool_ : pool_ + "/" + ns_;
}

std::string RadosPool::ObjectName(std::string_view oid) const {
  std::string name = Name();
  name += ':';
  name += oid;
  return name;
}

Result<std::shared_ptr<RadosPool>> RadosPool::Connect(
    const RadosOptions& options, const std::string& pool, const std::string& ns,
    std::string_view object_name) {
  std::shared_ptr<RadosPool> p(new RadosPool);
  p->pool_ = pool;
  p->ns_ = ns;
  const std::string object =
      object_name.empty() ? p->Name() : std::string(object_name);
  const std::string name =
      "client." +
      (options.client_id.empty() ? std::string("admin") : options.client_id);
  int r = rados_create2(&p->cluster_, "ceph", name.c_str(), 0);
  if (r < 0) {
    p->cluster_ = nullptr;
    return RadosError(r, "creating a Ceph client handle for " + name, object);
  }
  // An explicitly named configuration must be readable. Without one,
  // Ceph's default search may find nothing when $CEPH_ARGS carries
  // mon_host instead.
  std::string conf = options.conf_path;
  if (conf.empty()) {
    const char* env = std::getenv("CEPH_CONF");
    if (env != nullptr) conf = env;
  }
  r = rados_conf_read_file(p->cluster_, conf.empty() ? nullptr : conf.c_str());
  if (r < 0 && !conf.empty()) {
    return RadosError(r, "reading Ceph configuration " + conf, object);
  }
  r = rados_conf_parse_env(p->cluster_, nullptr);  // $CEPH_ARGS
  if (r < 0) return RadosError(r, "parsing $CEPH_ARGS", object);
  if (!options.keyring.empty()) {
    r = rados_conf_set(p->cluster_, "keyring", options.keyring.c_str());
    if (r < 0) {
      return RadosError(r, "setting keyring " + options.keyring, object);
    }
  }
  const std::string connect_timeout = std::to_string(options.connect_timeout_s);
  const std::string op_timeout = std::to_string(options.op_timeout_s);
  const std::pair<const char*, const char*> settings[] = {
      {"client_mount_timeout", connect_timeout.c_str()},
      {"rados_mon_op_timeout", connect_timeout.c_str()},
      {"rados_osd_op_timeout", op_timeout.c_str()},
  };
  for (const auto& [key, value] : settings) {
    r = rados_conf_set(p->cluster_, key, value);
    if (r < 0) return RadosError(r, std::string("setting ") + key, object);
  }
  r = rados_connect(p->cluster_);
  if (r < 0) {
    char mon_host[512] = "";
    if (rados_conf_get(p->cluster_, "mon_host", mon_host, sizeof(mon_host)) <
        0) {
      mon_host[0] = '\0';
    }
    std::string what = "connecting to the Ceph cluster";
    what += mon_host[0] != '\0' ? std::string(" at ") + mon_host
                                : std::string(" (no mon_host configured)");
    what += " as " + name;
    if (!conf.empty()) what += " using " + conf;
    if (r == -ETIMEDOUT) {
      what += " (gave up after " + connect_timeout + " s)";
    }
    return RadosError(r, what, object);
  }
  r = rados_ioctx_create(p->cluster_, pool.c_str(), &p->io_);
  if (r < 0) {
    p->io_ = nullptr;
    if (r == -ENOENT) {
      return Status::NotFound("pool '" + pool + "' does not exist", object);
    }
    return RadosError(r, "opening pool " + pool, object);
  }
  if (!ns.empty()) rados_ioctx_set_namespace(p->io_, ns.c_str());
  return p;
}

}  // namespace backy::store
