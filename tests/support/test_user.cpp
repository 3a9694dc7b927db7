#include "tests/support/test_user.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>

#include "common/files.hpp"
#include "common/process.hpp"
#include "common/strings.hpp"

namespace kiln::test {

Result<std::unique_ptr<TestUser>> TestUser::create(const std::string& prefix, AccountKind kind) {
    if (::geteuid() != 0) return fail("creating a test user with useradd needs root");
    std::string name = str_cat(prefix, ::getpid() % 100000, kind == AccountKind::system ? "s" : "r");
    std::vector<std::string> command = {"useradd", "--no-create-home", "--shell", "/usr/sbin/nologin"};
    if (kind == AccountKind::system) command.push_back("--system");
    command.push_back(name);
    KILN_ASSIGN(ProcessResult added, run_process(command));
    if (added.exit_code != 0) return fail(str_cat("useradd failed: ", trim(added.stderr_bytes)));
    const passwd* entry = ::getpwnam(name.c_str());
    if (!entry) return fail(str_cat("useradd succeeded but getpwnam(", name, ") finds nothing"));
    return std::unique_ptr<TestUser>(new TestUser(name, entry->pw_uid, entry->pw_gid));
}

Status TestUser::remove() {
    if (m_removed) return {};
    m_removed = true;
    KILN_ASSIGN(ProcessResult removed, run_process({"userdel", m_name}));
    if (removed.exit_code != 0) return fail(str_cat("userdel ", m_name, ": ", trim(removed.stderr_bytes)));
    for (const char* file : {"/etc/subuid", "/etc/subgid"})
        if (read_file(file).value_or("").find(m_name + ":") != std::string::npos)
            return fail(str_cat(m_name, " is still listed in ", file));
    return {};
}

TestUser::~TestUser() {
    if (auto removed = remove(); !removed)
        std::fprintf(stderr, "test user cleanup: %s\n", removed.error().message().c_str());
}

std::vector<std::string> as_user(const TestUser& user, NoNewPrivs no_new_privs, std::vector<std::string> argv) {
    std::vector<std::string> command = {"setpriv", str_cat("--reuid=", user.uid()), str_cat("--regid=", user.gid()),
                                        "--clear-groups"};
    if (no_new_privs == NoNewPrivs::on) command.push_back("--no-new-privs");
    command.push_back("--");
    command.insert(command.end(), argv.begin(), argv.end());
    return command;
}

}  // namespace kiln::test
