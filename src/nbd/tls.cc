// GnuTLS credentials and sessions (tls.h). GnuTLS error codes become Status
// values or error() strings here and nowhere else.
#include "nbd/tls.h"

#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string_view>
#include <vector>

#include "nbd/wire.h"  // Printable()

namespace backy::nbd {

namespace {

// Credentials files are small; a larger one is not what it claims to be.
constexpr size_t kMaxCredentialFile = 1 << 20;
// What qemu uses: GnuTLS's defaults, plus the PSK key exchanges when PSK is
// configured (they are not in NORMAL).
constexpr const char* kPriorityX509 = "NORMAL";
constexpr const char* kPriorityPsk = "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK";

void Wipe(std::string* s) {
  if (!s->empty()) gnutls_memset(s->data(), 0, s->size());
  s->clear();
}

// Reads `path` whole. A secret must be a regular file opened without
// following a symbolic link (one planted in the certificates directory must
// not make the server read another file) and not accessible by others.
Status ReadCredentialFile(const std::string& path, bool secret,
                          std::string* out) {
  const int flags =
      O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (secret ? O_NOFOLLOW : 0);
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    if (errno == ELOOP && secret) {
      return Status::InvalidArgument(
          "TLS secret is a symbolic link (give the file itself)", path);
    }
    return Status::FromErrno(errno, "reading TLS credentials", path);
  }
  struct stat st;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::FromErrno(errno, "reading TLS credentials", path);
  } else if (!S_ISREG(st.st_mode)) {
    s = Status::InvalidArgument("TLS credentials file is not a regular file",
                                path);
  } else if (static_cast<uint64_t>(st.st_size) > kMaxCredentialFile) {
    s = Status::InvalidArgument("TLS credentials file is larger than 1 MiB",
                                path);
  } else if (secret && (st.st_mode & S_IRWXO) != 0) {
    s = Status::InvalidArgument(
        "TLS secret is accessible by others (chmod o-rwx)", path);
  }
  if (s.ok()) {
    out->assign(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < out->size()) {
      const ssize_t n = ::read(fd, out->data() + got, out->size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        s = Status::FromErrno(errno, "reading TLS credentials", path);
        break;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out->resize(got);
  }
  ::close(fd);
  if (!s.ok()) Wipe(out);
  return s;
}

Status GnutlsError(int rc, std::string_view what, std::string_view object) {
  return Status::InvalidArgument(std::string(what) + ": " + gnutls_strerror(rc),
                                 object);
}

gnutls_datum_t Datum(const std::string& s) {
  return {reinterpret_cast<unsigned char*>(const_cast<char*>(s.data())),
          static_cast<unsigned int>(s.size())};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

struct TlsCredentials::Impl {
  gnutls_certificate_credentials_t x509 = nullptr;
  gnutls_psk_server_credentials_t psk = nullptr;
  gnutls_priority_t priority = nullptr;
  bool verify_peer = false;
  std::map<std::string, std::string, std::less<>> psk_keys;  // user -> key

  ~Impl() {
    for (auto& [user, key] : psk_keys) Wipe(&key);
    if (priority) gnutls_priority_deinit(priority);
    if (psk) gnutls_psk_free_server_credentials(psk);
    if (x509) gnutls_certificate_free_credentials(x509);
  }

  Status LoadX509(const std::string& dir);
  Status LoadPsk(const std::string& path);
};

Status TlsCredentials::Impl::LoadX509(const std::string& dir) {
  const std::string ca_path = dir + "/ca-cert.pem";
  const std::string crl_path = dir + "/ca-crl.pem";
  const std::string cert_path = dir + "/server-cert.pem";
  const std::string key_path = dir + "/server-key.pem";
  int rc = gnutls_certificate_allocate_credentials(&x509);
  if (rc < 0) return GnutlsError(rc, "TLS credentials", dir);

  std::string ca;
  Status s = ReadCredentialFile(ca_path, false, &ca);
  if (s.ok()) {
    const gnutls_datum_t d = Datum(ca);
    rc = gnutls_certificate_set_x509_trust_mem(x509, &d, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
      return rc < 0 ? GnutlsError(rc, "bad CA certificate", ca_path)
                    : Status::InvalidArgument("no CA certificate", ca_path);
    }
  } else if (!s.IsNotFound() || verify_peer) {
    // Without --tls-verify-peer the CA is optional (qemu's layout has it
    // for clients); with it, nothing could be verified.
    return s.IsNotFound()
               ? Status::NotFound(
                     "--tls-verify-peer needs the CA certificate that signs "
                     "client certificates",
                     ca_path)
               : s;
  }

  std::string crl;
  s = ReadCredentialFile(crl_path, false, &crl);
  if (s.ok()) {
    const gnutls_datum_t d = Datum(crl);
    rc = gnutls_certificate_set_x509_crl_mem(x509, &d, GNUTLS_X509_FMT_PEM);
    if (rc < 0)
      return GnutlsError(rc, "bad certificate revocation list", crl_path);
  } else if (!s.IsNotFound()) {
    return s;
  }

  std::string cert, key;
  s = ReadCredentialFile(cert_path, false, &cert);
  if (!s.ok()) return s;
  s = ReadCredentialFile(key_path, true, &key);
  if (!s.ok()) return s;
  const gnutls_datum_t c = Datum(cert);
  const gnutls_datum_t k = Datum(key);
  rc = gnutls_certificate_set_x509_key_mem2(x509, &c, &k, GNUTLS_X509_FMT_PEM,
                                            nullptr, 0);
  Wipe(&key);
  if (rc < 0) {
    // GnuTLS does not say which of the two it could not parse.
    return GnutlsError(rc, "bad server certificate or key",
                       cert_path + ", " + key_path);
  }
  return Status::OK();
}

Status TlsCredentials::Impl::LoadPsk(const std::string& path) {
  std::string text;
  Status s = ReadCredentialFile(path, true, &text);
  if (!s.ok()) return s;
  size_t line_no = 0;
  size_t pos = 0;
  while (s.ok() && pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    // Never quote the line: it holds a key.
    const std::string where = path + " line " + std::to_string(line_no);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      s = Status::InvalidArgument("PSK line is not 'username:hexkey'", where);
      break;
    }
    const std::string_view user = line.substr(0, colon);
    const std::string_view hex = line.substr(colon + 1);
    bool printable = true;
    for (unsigned char ch : user) printable &= ch > 0x20 && ch < 0x7f;
    if (!printable) {
      s = Status::InvalidArgument("PSK username has spaces or control bytes",
                                  where);
      break;
    }
    if (hex.empty() || hex.size() % 2 != 0) {
      s = Status::InvalidArgument("PSK key is not an even number of hex digits",
                                  where);
      break;
    }
    std::string key;
    key.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
      const int hi = HexValue(hex[i]);
      const int lo = HexValue(hex[i + 1]);
      if (hi < 0 || lo < 0) {
        s = Status::InvalidArgument("PSK key is not hexadecimal", where);
        break;
      }
      key += static_cast<char>(hi * 16 + lo);
    }
    if (!s.ok()) {
      Wipe(&key);
      break;
    }
    auto [it, inserted] = psk_keys.emplace(std::string(user), std::move(key));
    if (!inserted) {
      s = Status::InvalidArgument(
          "PSK username '" + std::string(user) + "' appears twice", where);
    }
  }
  Wipe(&text);
  if (!s.ok()) return s;
  if (psk_keys.empty()) {
    return Status::InvalidArgument("PSK file has no keys", path);
  }
  int rc = gnutls_psk_allocate_server_credentials(&psk);
  if (rc < 0) return GnutlsError(rc, "TLS credentials", path);
  return Status::OK();
}

// The callbacks GnuTLS calls during a handshake; their user data is the
// TlsSession (gnutls_session_set_ptr).
struct TlsCallbacks {
  static int Psk(gnutls_session_t session, const char* username,
                 gnutls_datum_t* key) {
    auto* self = static_cast<TlsSession*>(gnutls_session_get_ptr(session));
    self->psk_user_ = username;
    const auto& keys = self->creds_.impl_->psk_keys;
    auto it = keys.find(std::string_view(username));
    if (it == keys.end()) return -1;  // unknown user: the handshake fails
    key->data = static_cast<unsigned char*>(gnutls_malloc(it->second.size()));
    if (key->data == nullptr) return -1;
    std::memcpy(key->data, it->second.data(), it->second.size());
    key->size = static_cast<unsigned int>(it->second.size());
    return 0;
  }
};

TlsCredentials::TlsCredentials(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

TlsCredentials::~TlsCredentials() = default;

Result<std::unique_ptr<TlsCredentials>> TlsCredentials::Load(
    const TlsOptions& o) {
  auto impl = std::make_unique<Impl>();
  impl->verify_peer = o.verify_peer;
  if (!o.certificates_dir.empty()) {
    Status s = impl->LoadX509(o.certificates_dir);
    if (!s.ok()) return s;
  }
  if (!o.psk_file.empty()) {
    Status s = impl->LoadPsk(o.psk_file);
    if (!s.ok()) return s;
    gnutls_psk_set_server_credentials_function(impl->psk, &TlsCallbacks::Psk);
    // For DHE-PSK with clients that do not offer RFC 7919 groups.
    gnutls_psk_set_server_known_dh_params(impl->psk, GNUTLS_SEC_PARAM_MEDIUM);
  }
  if (impl->x509 == nullptr && impl->psk == nullptr) {
    return Status::InvalidArgument("TLS needs certificates or a PSK file");
  }
  const char* err = nullptr;
  const int rc = gnutls_priority_init(
      &impl->priority, impl->psk ? kPriorityPsk : kPriorityX509, &err);
  if (rc < 0) return GnutlsError(rc, "TLS priority string", err ? err : "");
  return std::unique_ptr<TlsCredentials>(new TlsCredentials(std::move(impl)));
}

std::string TlsCredentials::Describe() const {
  std::string out;
  if (impl_->x509) {
    out = impl_->verify_peer ? "x509 (client certificates verified)" : "x509";
  }
  if (impl_->psk) {
    if (!out.empty()) out += ", ";
    out += "PSK (" + std::to_string(impl_->psk_keys.size()) +
           (impl_->psk_keys.size() == 1 ? " user)" : " users)");
  }
  return out;
}

// ---- TlsSession -----------------------------------------------------------

TlsSession::TlsSession(const TlsCredentials& creds, gnutls_session_t session)
    : creds_(creds), session_(session) {}

TlsSession::~TlsSession() {
  Wipe(&psk_user_);
  gnutls_deinit(session_);
}

Result<std::unique_ptr<TlsSession>> TlsSession::Create(
    const TlsCredentials& creds, int fd) {
  gnutls_session_t s = nullptr;
  int rc = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK);
  if (rc < 0) return GnutlsError(rc, "TLS session", {});
  std::unique_ptr<TlsSession> self(new TlsSession(creds, s));
  const TlsCredentials::Impl& c = *creds.impl_;
  rc = gnutls_priority_set(s, c.priority);
  if (rc >= 0 && c.x509) {
    rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c.x509);
  }
  if (rc >= 0 && c.psk) rc = gnutls_credentials_set(s, GNUTLS_CRD_PSK, c.psk);
  if (rc < 0) return GnutlsError(rc, "TLS session", {});
  if (c.x509) {
    if (c.verify_peer) {
      gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
      gnutls_session_set_verify_cert(s, nullptr, 0);  // chain to the CA
    } else {
      gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
    }
  }
  gnutls_session_set_ptr(s, self.get());
  gnutls_transport_set_int(s, fd);
  return self;
}

TlsSession::Io TlsSession::Fail(int rc) {
  if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
    return gnutls_record_get_direction(session_) == 0 ? Io::kWantRead
                                                      : Io::kWantWrite;
  }
  error_ = gnutls_strerror(rc);
  if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
    gnutls_datum_t out{};
    const unsigned status = gnutls_session_get_verify_cert_status(session_);
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509,
                                                     &out, 0) >= 0) {
      error_ = "client certificate refused: " +
               std::string(reinterpret_cast<char*>(out.data), out.size);
      while (!error_.empty() && error_.back() == ' ') error_.pop_back();
      gnutls_free(out.data);
    }
  }
  return Io::kError;
}

// The subject of the certificate the client presented, verified or not.
void TlsSession::NoteRefusedCertificate() {
  unsigned n = 0;
  const gnutls_datum_t* peers = gnutls_certificate_get_peers(session_, &n);
  if (peers == nullptr || n == 0) return;
  gnutls_x509_crt_t crt = nullptr;
  if (gnutls_x509_crt_init(&crt) < 0) return;
  gnutls_datum_t dn{};
  if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0 &&
      gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
    refused_identity_ =
        "certificate " +
        Printable(std::string_view(reinterpret_cast<char*>(dn.data), dn.size));
    gnutls_free(dn.data);
  }
  gnutls_x509_crt_deinit(crt);
}

TlsSession::Io TlsSession::Handshake() {
  if (handshake_done_) return Io::kOk;
  const int rc = gnutls_handshake(session_);
  if (rc < 0) {
    const Io io = Fail(rc);
    if (io == Io::kError) {
      if (!psk_user_.empty()) {
        refused_identity_ = "PSK user '" + Printable(psk_user_) + "'";
      } else {
        NoteRefusedCertificate();
      }
    }
    return io;
  }
  handshake_done_ = true;
  if (gnutls_auth_get_type(session_) == GNUTLS_CRD_PSK) {
    const char* user = gnutls_psk_server_get_username(session_);
    identity_ = user ? user : "";
  } else if (creds_.impl_->verify_peer) {
    // Verified by GnuTLS during the handshake (gnutls_session_set_verify_cert).
    unsigned n = 0;
    const gnutls_datum_t* peers = gnutls_certificate_get_peers(session_, &n);
    gnutls_x509_crt_t crt = nullptr;
    if (peers != nullptr && n > 0 && gnutls_x509_crt_init(&crt) >= 0) {
      if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0) {
        char cn[256];
        size_t size = sizeof(cn);
        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
                                          0, cn, &size) >= 0) {
          identity_.assign(cn, size);
        }
      }
      gnutls_x509_crt_deinit(crt);
    }
  }
  return Io::kOk;
}

TlsSession::Io TlsSession::Recv(uint8_t* buf, size_t cap, size_t* got) {
  for (;;) {
    const ssize_t n = gnutls_record_recv(session_, buf, cap);
    if (n > 0) {
      *got = static_cast<size_t>(n);
      return Io::kOk;
    }
    // A peer that closes without close_notify has still closed.
    if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) return Io::kEof;
    if (n == GNUTLS_E_INTERRUPTED) continue;
    return Fail(static_cast<int>(n));
  }
}

TlsSession::Io TlsSession::Send(const uint8_t* buf, size_t len, size_t* sent) {
  for (;;) {
    const ssize_t n = gnutls_record_send(session_, buf, len);
    if (n > 0) {
      *sent = static_cast<size_t>(n);
      return Io::kOk;
    }
    if (n == GNUTLS_E_INTERRUPTED) continue;
    if (n == 0) {
      error_ = "TLS send wrote nothing";
      return Io::kError;
    }
    return Fail(static_cast<int>(n));
  }
}

void TlsSession::Bye() {
  if (handshake_done_) gnutls_bye(session_, GNUTLS_SHUT_WR);
}

}  // namespace backy::nbd
