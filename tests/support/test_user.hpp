#pragma once
// A throwaway Unix user for tests that must run kiln as non-root: created with useradd (which gives regular
// accounts /etc/subuid and /etc/subgid ranges), removed with userdel when the object goes away.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace kiln::test {

enum class AccountKind { regular, system };  // useradd gives subordinate ids to regular accounts only

class TestUser {
public:
    // Creates a user named `<prefix><pid><r|s>`; the error says why it could not (not root, useradd failed…).
    static Result<std::unique_ptr<TestUser>> create(const std::string& prefix, AccountKind kind);
    TestUser(const TestUser&) = delete;
    TestUser& operator=(const TestUser&) = delete;
    // Removes the user if remove() was not called; failures are reported on stderr.
    ~TestUser();

    // userdel, then checks that no subordinate-id entry is left. Idempotent.
    Status remove();

    const std::string& name() const { return m_name; }
    uid_t uid() const { return m_uid; }
    gid_t gid() const { return m_gid; }

private:
    TestUser(std::string name, uid_t uid, gid_t gid) : m_name(std::move(name)), m_uid(uid), m_gid(gid) {}
    std::string m_name;
    uid_t m_uid;
    gid_t m_gid;
    bool m_removed = false;
};

enum class NoNewPrivs { off, on };

// The command line that runs `argv` as `user` through setpriv, with no supplementary groups.
std::vector<std::string> as_user(const TestUser& user, NoNewPrivs no_new_privs, std::vector<std::string> argv);

}  // namespace kiln::test
