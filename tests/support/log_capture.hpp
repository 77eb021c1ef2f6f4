// A Logger sink for tests: it keeps every line, from any thread, to look through afterwards.
#ifndef SOCKETSERVER_TESTS_LOG_CAPTURE_HPP
#define SOCKETSERVER_TESTS_LOG_CAPTURE_HPP

#include <algorithm>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <socketserver/logger.hpp>

namespace test {

class LogCapture {
 public:
  struct Line {
    socketserver::LogLevel level;
    socketserver::LogCategory category;
    std::string text;

    // "category level: text".
    std::string to_string() const {
      return std::string(socketserver::to_string(category)) + " " + std::string(socketserver::to_string(level)) + ": " +
             text;
    }
  };

  // A sink that keeps each line here; the capture must outlive the logger's use of it.
  socketserver::Logger::Sink sink() {
    return [this](socketserver::LogLevel level, socketserver::LogCategory category, std::string_view text) {
      std::lock_guard lock(mutex_);
      lines_.push_back({level, category, std::string(text)});
    };
  }
  // Sends `logger`'s lines here, from `level` up (by default info: access lines too).
  void attach(socketserver::Logger& logger, socketserver::LogLevel level = socketserver::LogLevel::info) {
    logger.level = level;
    logger.sink = sink();
  }

  std::vector<Line> get() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::vector<Line> of(socketserver::LogCategory category) const {
    std::vector<Line> matching;
    for (const Line& line : get()) {
      if (line.category == category) matching.push_back(line);
    }
    return matching;
  }
  // Whether a line of `category` contains `text`.
  bool contains(socketserver::LogCategory category, std::string_view text) const {
    const auto lines = of(category);
    return std::any_of(lines.begin(), lines.end(),
                       [&](const Line& line) { return line.text.find(text) != std::string::npos; });
  }
  // Every line as Line::to_string() writes it.
  std::vector<std::string> strings() const {
    std::vector<std::string> all;
    for (const Line& line : get()) all.push_back(line.to_string());
    return all;
  }
  // Every line, one a line (for INFO()).
  std::string dump() const {
    std::string all;
    for (const std::string& line : strings()) all += line + "\n";
    return all;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Line> lines_;
};

}  // namespace test

#endif  // SOCKETSERVER_TESTS_LOG_CAPTURE_HPP
