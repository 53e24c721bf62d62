// Fixed-newstyle option haggling (NBD spec "Handshake" and "Option types").
#include <spdlog/spdlog.h>

#include <algorithm>

#include "nbd/cow_export.h"
#include "nbd/internal.h"

namespace backy::nbd {

namespace {

// NBD_REP_ERR_* for an export that could not be opened.
uint32_t OpenErrorReply(const Status& s) {
  if (s.IsInvalidArgument()) return kRepErrInvalid;
  if (s.IsInterrupted()) return kRepErrShutdown;
  return kRepErrUnknown;  // "the requested export is not available"
}

void AppendU32(std::vector<uint8_t>* v, uint32_t x) {
  uint8_t b[4];
  PutU32(b, x);
  v->insert(v->end(), b, b + 4);
}

std::string Truncated(std::string s) {
  if (s.size() > kMaxStringLength) s.resize(kMaxStringLength);
  return s;
}

}  // namespace

asio::awaitable<bool> Connection::SendOptionReply(
    uint32_t option, uint32_t type, std::span<const uint8_t> data) {
  uint8_t hdr[sizeof(OptionReplyHeader)];
  uint8_t* p = PutU64(hdr, kOptReplyMagic);
  p = PutU32(p, option);
  p = PutU32(p, type);
  PutU32(p, static_cast<uint32_t>(data.size()));
  std::vector<ReplyPart> parts{{&hdr[0], sizeof(hdr)},
                               {data.data(), data.size()}};
  co_return co_await SendAll(std::move(parts));
}

asio::awaitable<bool> Connection::SendOptionError(uint32_t option,
                                                  uint32_t type,
                                                  std::string_view message) {
  spdlog::debug("nbd[{}]: option {} refused ({:#x}): {}", id_, option, type,
                message);
  message = message.substr(0, kMaxStringLength);
  co_return co_await SendOptionReply(
      option, type,
      {reinterpret_cast<const uint8_t*>(message.data()), message.size()});
}

uint16_t Connection::TransmissionFlags(const Export& exp) const {
  uint16_t f = kTransHasFlags | kTransSendFlush | kTransSendCache;
  if (structured_) f |= kTransSendDf;
  if (exp.IsReadOnly()) {
    f |= kTransReadOnly;
  } else {
    f |= kTransSendFua | kTransSendTrim | kTransSendWriteZeroes;
  }
  if (exp.CanMultiConn()) f |= kTransCanMultiConn;
  return f;
}

asio::awaitable<Result<std::shared_ptr<Export>>> Connection::OpenExport(
    const std::string& name) {
  // Opening may read an index from disk: keep it off the I/O thread.
  ExportProvider& provider = server_.provider;
  const ServerOptions& opts = server_.options;
  co_return co_await RunOnPool<Result<std::shared_ptr<Export>>>(
      server_.pool, [&provider, &opts, &name, this]() {
        Result<std::shared_ptr<Export>> r = provider.OpenExport(name, client_);
        if (r.ok() && opts.cow && (*r)->IsReadOnly()) {
          std::shared_ptr<Export> cow =
              std::make_shared<CowExport>(*r, opts.cow_temp_dir);
          return Result<std::shared_ptr<Export>>(std::move(cow));
        }
        return r;
      });
}

asio::awaitable<bool> Connection::Handshake() {
  uint8_t greeting[sizeof(Greeting)];
  uint8_t* p = PutU64(greeting, kNbdMagic);
  p = PutU64(p, kOptMagic);
  PutU16(p, kFlagFixedNewstyle | kFlagNoZeroes);
  std::vector<ReplyPart> parts{{&greeting[0], sizeof(greeting)}};
  if (!co_await SendAll(std::move(parts))) co_return false;

  uint8_t cflags_buf[4];
  if (!co_await reader_.Read(cflags_buf, 4)) {
    SetReadEnd();
    co_return false;
  }
  const uint32_t cflags = GetU32(cflags_buf);
  if (!KnownClientFlags(cflags)) {
    spdlog::debug("nbd[{}]: unknown client flags {:#x}", id_, cflags);
    SetEnd("error: unknown client flags");
    co_return false;
  }
  no_zeroes_ = (cflags & kClientFlagNoZeroes) != 0;

  std::vector<uint8_t> data;
  for (;;) {
    uint8_t hdr[sizeof(OptionHeader)];
    if (!co_await reader_.Read(hdr, sizeof(hdr))) {
      SetReadEnd();
      co_return false;
    }
    last_activity_ = Clock::now();
    OptionHeaderFields h;
    if (const char* why = DecodeOptionHeader(hdr, &h)) {
      spdlog::debug("nbd[{}]: {} (magic {:#x}, option {}, {} bytes)", id_, why,
                    h.magic, h.option, h.length);
      SetEnd(std::string("error: ") + why);
      co_return false;
    }
    const uint32_t option = h.option;
    const uint32_t length = h.length;
    data.resize(length);
    if (length > 0 && !co_await reader_.Read(data.data(), length)) {
      SetReadEnd();
      co_return false;
    }
    spdlog::debug("nbd[{}]: option {} ({} bytes)", id_, option, length);

    if (option == kOptAbort) {
      SetEnd("NBD_OPT_ABORT");
      co_await SendOptionReply(option, kRepAck, {});
      co_return false;
    }
    if (server_.stopping || refused_) {
      if (option == kOptExportName) {  // cannot answer
        SetEnd(server_.stopping ? "server shutdown"
                                : "error: over the connection limit");
        co_return false;
      }
      const bool ok = co_await SendOptionError(
          option, server_.stopping ? kRepErrShutdown : kRepErrPolicy,
          server_.stopping ? "server is shutting down"
                           : "too many connections to this server");
      if (!ok) co_return false;
      continue;
    }
    // FORCEDTLS: nothing but STARTTLS (and ABORT) before TLS.
    if (server_.tls_mode == TlsMode::kRequire && !tls_ &&
        option != kOptStartTls) {
      if (option == kOptExportName) {  // cannot answer: hang up
        SetEnd("error: NBD_OPT_EXPORT_NAME without TLS (TLS is required)");
        co_return false;
      }
      if (!co_await SendOptionError(
              option, kRepErrTlsReqd,
              "TLS is required: send NBD_OPT_STARTTLS first")) {
        co_return false;
      }
      continue;
    }

    bool ok = true;
    switch (option) {
      case kOptExportName:
        co_return co_await HandleExportName(data);
      case kOptList:
        ok = co_await HandleList(data);
        break;
      case kOptInfo:
      case kOptGo: {
        bool go = false;
        ok = co_await HandleInfoOrGo(option, data, &go);
        if (ok && go) co_return true;
        break;
      }
      case kOptStructuredReply:
        if (!data.empty()) {
          ok = co_await SendOptionError(option, kRepErrInvalid,
                                        "unexpected option data");
        } else if (structured_) {
          ok = co_await SendOptionError(option, kRepErrInvalid,
                                        "structured replies already on");
        } else {
          structured_ = true;
          ok = co_await SendOptionReply(option, kRepAck, {});
        }
        break;
      case kOptListMetaContext:
      case kOptSetMetaContext:
        ok = co_await HandleMetaContext(option, data);
        break;
      case kOptStartTls:
        ok = co_await HandleStartTls(data);
        break;
      default:
        ok = co_await SendOptionError(option, kRepErrUnsup,
                                      "option not supported");
        break;
    }
    if (!ok) co_return false;
  }
}

asio::awaitable<bool> Connection::HandleExportName(
    std::span<const uint8_t> data) {
  std::string name(reinterpret_cast<const char*>(data.data()), data.size());
  Result<std::shared_ptr<Export>> r = co_await OpenExport(name);
  if (!r.ok()) {
    // NBD_OPT_EXPORT_NAME cannot carry an error: the spec says hang up.
    spdlog::debug("nbd[{}]: export '{}': {}", id_, name, r.status().ToString());
    n_.name = name;  // for the log
    SetEnd("error: export not available: " + r.status().Message());
    co_return false;
  }
  n_.exp = *r;
  n_.name = name;
  n_.size = n_.exp->Size();
  n_.structured = structured_;
  n_.base_allocation = meta_selected_ && meta_export_name_ == name;
  n_.transmission_flags = TransmissionFlags(*n_.exp);

  uint8_t reply[sizeof(ExportNameReply) + kExportNameZeroPad] = {};
  uint8_t* p = PutU64(reply, n_.size);
  PutU16(p, n_.transmission_flags);
  const size_t len =
      sizeof(ExportNameReply) + (no_zeroes_ ? 0 : kExportNameZeroPad);
  std::vector<ReplyPart> parts{{&reply[0], len}};
  co_return co_await SendAll(std::move(parts));
}

asio::awaitable<bool> Connection::HandleStartTls(
    std::span<const uint8_t> data) {
  if (server_.tls == nullptr) {
    co_return co_await SendOptionError(kOptStartTls, kRepErrPolicy,
                                       "TLS is not enabled on this server");
  }
  if (tls_) {
    co_return co_await SendOptionError(kOptStartTls, kRepErrInvalid,
                                       "TLS is already on");
  }
  if (!data.empty()) {
    co_return co_await SendOptionError(kOptStartTls, kRepErrInvalid,
                                       "NBD_OPT_STARTTLS takes no data");
  }
  if (!co_await SendOptionReply(kOptStartTls, kRepAck, {})) co_return false;
  // The client must wait for the ACK: bytes already here were sent in
  // plaintext and must not be taken for the handshake, nor for options
  // protected by it (a man in the middle could have injected them).
  if (reader_.Buffered() > 0) {
    SetEnd("TLS handshake failed: plaintext data after NBD_OPT_STARTTLS");
    co_return false;
  }
  Result<std::unique_ptr<TlsSession>> session =
      TlsSession::Create(*server_.tls, socket_.native_handle());
  if (!session.ok()) {
    SetEnd("TLS handshake failed: " + session.status().Message());
    co_return false;
  }
  tls_ = std::move(*session);
  tls_handshaking_ = true;
  // A client that starts the handshake and stalls must not keep its slot.
  tls_deadline_.expires_after(server_.options.tls.handshake_timeout);
  tls_deadline_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec && self->tls_handshaking_) {
          self->Close("TLS handshake failed: timed out");
        }
      });
  bool ok = false;
  for (;;) {
    const TlsSession::Io io = tls_->Handshake();
    if (io == TlsSession::Io::kOk) {
      ok = true;
      break;
    }
    if (io != TlsSession::Io::kWantRead && io != TlsSession::Io::kWantWrite) {
      SetEnd("TLS handshake failed: " + tls_->error());
      break;
    }
    boost::system::error_code ec;
    co_await socket_.async_wait(io == TlsSession::Io::kWantRead
                                    ? Socket::wait_read
                                    : Socket::wait_write,
                                Redirect(ec));
    if (ec || closed_) {
      SetEnd("TLS handshake failed: " + ec.message());
      break;
    }
  }
  tls_handshaking_ = false;
  tls_deadline_.cancel();
  if (!ok) {
    refused_identity_ = tls_->refused_identity();
    co_return false;
  }
  reader_.UseTls(tls_.get());
  client_.tls = true;
  client_.identity = tls_->identity();
  last_activity_ = Clock::now();
  spdlog::debug("nbd[{}]: TLS on, identity '{}'", id_,
                Printable(client_.identity));
  co_return true;
}

asio::awaitable<bool> Connection::HandleList(std::span<const uint8_t> data) {
  if (!data.empty()) {
    co_return co_await SendOptionError(kOptList, kRepErrInvalid,
                                       "unexpected option data");
  }
  ExportProvider& provider = server_.provider;
  Result<std::vector<ExportInfo>> list =
      co_await RunOnPool<Result<std::vector<ExportInfo>>>(
          server_.pool,
          [&provider, this]() { return provider.ListExports(client_); });
  if (!list.ok()) {
    spdlog::debug("nbd[{}]: listing exports: {}", id_,
                  list.status().ToString());
    co_return co_await SendOptionError(
        kOptList, kRepErrPolicy,
        Truncated("cannot list exports: " + list.status().Message()));
  }
  std::vector<uint8_t> payload;
  for (const ExportInfo& e : *list) {
    const std::string name = Truncated(e.name);
    const std::string desc = Truncated(e.description);
    payload.clear();
    AppendU32(&payload, static_cast<uint32_t>(name.size()));
    payload.insert(payload.end(), name.begin(), name.end());
    payload.insert(payload.end(), desc.begin(), desc.end());
    if (!co_await SendOptionReply(kOptList, kRepServer, payload)) {
      co_return false;
    }
  }
  co_return co_await SendOptionReply(kOptList, kRepAck, {});
}

asio::awaitable<bool> Connection::HandleInfoOrGo(uint32_t option,
                                                 std::span<const uint8_t> data,
                                                 bool* go) {
  InfoRequest req;
  if (const char* why = ParseInfoRequest(data, &req)) {
    co_return co_await SendOptionError(option, kRepErrInvalid, why);
  }
  const std::string& name = req.name;
  const std::vector<uint16_t>& requests = req.infos;
  Result<std::shared_ptr<Export>> r = co_await OpenExport(name);
  if (!r.ok()) {
    co_return co_await SendOptionError(
        option, OpenErrorReply(r.status()),
        Truncated("export '" + name +
                  "' is not available: " + r.status().Message()));
  }
  std::shared_ptr<Export> exp = std::move(*r);
  const uint16_t tflags = TransmissionFlags(*exp);
  auto wants = [&requests](uint16_t info) {
    return std::find(requests.begin(), requests.end(), info) != requests.end();
  };

  uint8_t info_export[sizeof(InfoExport)];
  uint8_t* p = PutU16(info_export, kInfoExport);
  p = PutU64(p, exp->Size());
  PutU16(p, tflags);
  if (!co_await SendOptionReply(option, kRepInfo, info_export)) {
    co_return false;
  }
  if (wants(kInfoName)) {
    std::vector<uint8_t> v(2);
    PutU16(v.data(), kInfoName);
    const std::string canonical =
        exp->CanonicalName().empty() ? name : Truncated(exp->CanonicalName());
    v.insert(v.end(), canonical.begin(), canonical.end());
    if (!co_await SendOptionReply(option, kRepInfo, v)) co_return false;
  }
  const std::string desc = Truncated(exp->Description());
  if (wants(kInfoDescription) && !desc.empty()) {
    std::vector<uint8_t> v(2);
    PutU16(v.data(), kInfoDescription);
    v.insert(v.end(), desc.begin(), desc.end());
    if (!co_await SendOptionReply(option, kRepInfo, v)) co_return false;
  }
  // Always sent: clients that did not ask may still use it, and these are
  // the defaults except for the maximum, which equals the interoperable
  // 32 MiB limit every client already honours.
  uint8_t info_bs[sizeof(InfoBlockSize)];
  p = PutU16(info_bs, kInfoBlockSize);
  p = PutU32(p, kMinBlockSize);
  p = PutU32(p, kPreferredBlockSize);
  PutU32(p, kMaxBlockSize);
  if (!co_await SendOptionReply(option, kRepInfo, info_bs)) co_return false;
  if (!co_await SendOptionReply(option, kRepAck, {})) co_return false;

  if (option == kOptGo) {
    n_.exp = std::move(exp);
    n_.name = name;
    n_.size = n_.exp->Size();
    n_.structured = structured_;
    n_.base_allocation = meta_selected_ && meta_export_name_ == name;
    n_.transmission_flags = tflags;
    *go = true;
  }
  co_return true;
}

asio::awaitable<bool> Connection::HandleMetaContext(
    uint32_t option, std::span<const uint8_t> data) {
  const bool set = option == kOptSetMetaContext;
  if (set) meta_selected_ = false;  // replaced even if this one fails
  if (!structured_) {
    co_return co_await SendOptionError(option, kRepErrInvalid,
                                       "structured replies not negotiated");
  }
  MetaContextRequest req;
  if (const char* why = ParseMetaContextRequest(data, &req)) {
    co_return co_await SendOptionError(option, kRepErrInvalid, why);
  }
  const bool match = MatchesBaseAllocation(req.queries, set);
  if (match) {
    std::vector<uint8_t> v;
    AppendU32(&v, set ? kBaseAllocationContextId : 0);
    const std::string_view ctx = kMetaContextBaseAllocation;
    v.insert(v.end(), ctx.begin(), ctx.end());
    if (!co_await SendOptionReply(option, kRepMetaContext, v)) {
      co_return false;
    }
  }
  if (set) {
    meta_selected_ = match;
    meta_export_name_ = req.name;
  }
  co_return co_await SendOptionReply(option, kRepAck, {});
}

}  // namespace backy::nbd
