// chat: a chat room. The first line a client sends is its nickname (OK, or ERR and try again);
// then each line goes to everyone else as "name: text". /who lists who is here, /quit leaves.
//   build/examples/chat &   nc 127.0.0.1 7000     (in two terminals: type a name, then talk)
// A client that stops reading is cut once --max-queued-bytes wait for it; the others go on.
// --concurrency threading (the default), pool or async.
#include <socketserver/async.hpp>
#include <socketserver/socketserver.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "example_support.hpp"

// Who is here: the connections, to broadcast to, and the nicknames taken.
struct Room {
  socketserver::ConnectionGroup members;
  std::mutex mutex;
  std::set<std::string> names;
};
Room room;

// One client's side of the conversation, whatever runs it: said() takes each line it sends and
// returns the reply for it alone (empty for none).
class Member {
 public:
  explicit Member(socketserver::ConnectionHandle connection) : connection_(std::move(connection)) {}
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;
  ~Member() {
    if (name_.empty()) return;
    room.members.remove(connection_);
    const std::lock_guard lock(room.mutex);
    room.names.erase(name_);
    room.members.broadcast("* " + name_ + " left\n");
  }

  std::string said(std::string_view line) {
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (name_.empty()) return claim(line);
    if (line == "/quit") {
      quit_ = true;
      return "OK bye\n";
    }
    if (line == "/who") {
      const std::lock_guard lock(room.mutex);
      std::string who = "users:";
      for (const std::string& name : room.names) who += " " + name;
      return who + "\n";
    }
    room.members.broadcast(name_ + ": " + std::string(line) + "\n", connection_);
    return {};
  }

  bool quit() const noexcept { return quit_; }

 private:
  std::string claim(std::string_view name) {
    const bool valid =
        !name.empty() && name.size() <= 32 && name.front() != '/' &&
        name.find_first_of(" \t\x7f") == std::string_view::npos &&
        std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) >= 32; });
    if (!valid) return "ERR a nickname is 1 to 32 characters, no spaces, not starting with /\n";
    const std::lock_guard lock(room.mutex);
    if (!room.names.insert(std::string(name)).second) return "ERR " + std::string(name) + " is taken\n";
    name_ = name;
    room.members.broadcast("* " + name_ + " joined\n");
    room.members.add(connection_);
    return "OK welcome, " + name_ + "\n";
  }

  socketserver::ConnectionHandle connection_;
  std::string name_;
  bool quit_ = false;
};

struct Chat : socketserver::StreamRequestHandler {
  void handle() override {
    Member member(connection_handle());
    while (auto line = rfile.readline()) {
      wfile.write(member.said(*line));
      if (member.quit()) return;
    }
  }
};

struct AsyncChat : socketserver::AsyncStreamRequestHandler {
  asio::awaitable<void> handle() override {
    Member member(connection_handle());
    while (auto line = co_await rfile.readline()) {
      const std::string reply = member.said(*line);  // named: see docs/python-mapping.md on GCC 12
      co_await wfile.write(reply);
      if (member.quit()) co_return;
    }
  }
};

int main(int argc, char** argv) try {
  const auto options =
      examples::parse_options(argc, argv, "A chat room: a nickname first, then every line goes to everyone else.", 7000,
                              examples::with_concurrency);
  const socketserver::Address address(options.host, options.port);
  switch (options.concurrency) {
    case examples::Concurrency::threading: {
      socketserver::ThreadingTCPServer<Chat> server(address);
      return examples::serve(server, options, "chat");
    }
    case examples::Concurrency::pool: {
      socketserver::ThreadPoolMixIn<socketserver::TCPServer<Chat>> server(address);
      if (options.threads > 0) server.max_workers = options.threads;
      return examples::serve(server, options, "chat");
    }
    case examples::Concurrency::async: {
      socketserver::AsyncTCPServer<AsyncChat> server(address);
      if (options.threads > 0) server.threads = options.threads;
      return examples::serve(server, options, "chat");
    }
    case examples::Concurrency::plain:
    case examples::Concurrency::forking:
      break;
  }
  fmt::print(stderr, "chat: --concurrency must be threading, pool or async: the room is shared by the connections\n");
  return 2;
} catch (const std::exception& e) {
  fmt::print(stderr, "chat: {}\n", e.what());
  return 1;
}
