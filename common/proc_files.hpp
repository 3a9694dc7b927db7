#pragma once
// Reading /proc: a process's status fields, small files and links below its directory, and its start time.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/fd.hpp"

namespace kiln {

// The value of the "Name:\tvalue" line of a /proc/PID/status text, trimmed.
std::optional<std::string> status_field(std::string_view status, std::string_view name);
// A status field that holds a pid ("Pid", "Tgid", "PPid").
std::optional<pid_t> status_pid(std::string_view status, std::string_view name);
// A field of this process's own status.
std::optional<std::string> own_status_field(std::string_view name);

// /proc/PID as an O_PATH directory; invalid when the process is gone.
UniqueFd open_proc(pid_t pid);
// A small file below a /proc/PID directory, read whole (up to 1 MiB).
std::optional<std::string> read_proc_file(int proc_dir, const char* name);
// The target of a link below a /proc/PID directory ("cwd", "root", "fd/3").
std::optional<std::string> read_proc_link(int proc_dir, const std::string& name);
// When the thread whose /proc directory is `proc_dir` started (field 22 of its stat, in clock ticks since
// boot), which tells it from a later thread with the same number; 0 when it is gone.
std::uint64_t proc_start_time(int proc_dir);
std::uint64_t proc_start_time_of(pid_t pid);

}  // namespace kiln
