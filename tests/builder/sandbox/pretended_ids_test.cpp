// The ownership supervisor's id changes follow the kernel's rules (credentials(7)), so that a program that
// drops privileges and checks it cannot regain them (apt, su) sees what it would see with real ids.

#include "builder/sandbox/pretended_ids.hpp"

#include <cerrno>

#include <gtest/gtest.h>

namespace kiln {
namespace {

PretendedIds user(std::uint32_t uid, std::uint32_t gid) {
    PretendedIds ids;
    ids.ruid = ids.euid = ids.suid = ids.fsuid = uid;
    ids.rgid = ids.egid = ids.sgid = ids.fsgid = gid;
    return ids;
}

TEST(PretendedIdsTest, RootDroppingToAUserCannotRegainRoot) {
    PretendedIds ids;
    ASSERT_EQ(set_groups(ids, {42}), 0);
    ASSERT_EQ(set_gid(ids, 42), 0);
    ASSERT_EQ(set_uid(ids, 100), 0);
    EXPECT_EQ(ids.ruid, 100u);
    EXPECT_EQ(ids.suid, 100u);
    EXPECT_EQ(ids.fsuid, 100u);
    EXPECT_EQ(set_uid(ids, 0), EPERM);
    EXPECT_EQ(set_resuid(ids, k_unchanged_id, 0, k_unchanged_id), EPERM);
    EXPECT_EQ(set_groups(ids, {}), EPERM);
    EXPECT_EQ(ids.group_count(), 1u);
}

TEST(PretendedIdsTest, ASavedRootIdCanBeTakenBack) {
    PretendedIds ids;
    ASSERT_EQ(set_resuid(ids, k_unchanged_id, 100, k_unchanged_id), 0);  // seteuid(100)
    EXPECT_EQ(ids.euid, 100u);
    EXPECT_EQ(ids.suid, 0u);
    EXPECT_EQ(set_resuid(ids, k_unchanged_id, 0, k_unchanged_id), 0);  // seteuid(0): the saved id
    EXPECT_EQ(ids.euid, 0u);
}

TEST(PretendedIdsTest, AnUnprivilegedUserMovesOnlyAmongItsOwnIds) {
    PretendedIds ids = user(100, 100);
    EXPECT_EQ(set_uid(ids, 200), EPERM);
    EXPECT_EQ(set_gid(ids, 200), EPERM);
    EXPECT_EQ(set_uid(ids, 100), 0);
    EXPECT_EQ(ids.euid, 100u);
}

TEST(PretendedIdsTest, SetreuidSavesTheNewEffectiveIdWhenTheRealOneChanges) {
    PretendedIds ids;
    ASSERT_EQ(set_reuid(ids, 100, 200), 0);
    EXPECT_EQ(ids.ruid, 100u);
    EXPECT_EQ(ids.euid, 200u);
    EXPECT_EQ(ids.suid, 200u);
    // Only the effective id, to the real one: the saved id stays.
    ASSERT_EQ(set_reuid(ids, k_unchanged_id, 100), 0);
    EXPECT_EQ(ids.suid, 200u);
}

TEST(PretendedIdsTest, SetfsuidReturnsTheOldIdAndChangesOnlyWhenAllowed) {
    PretendedIds ids = user(100, 100);
    EXPECT_EQ(set_fsuid(ids, 300), 100u);
    EXPECT_EQ(ids.fsuid, 100u);  // not one of its ids
    EXPECT_EQ(set_fsuid(ids, k_unchanged_id), 100u);  // the query form
    PretendedIds root;
    EXPECT_EQ(set_fsuid(root, 300), 0u);
    EXPECT_EQ(root.fsuid, 300u);
}

TEST(PretendedIdsTest, AnEffectiveIdChangeMovesTheFilesystemId) {
    PretendedIds ids;
    ASSERT_EQ(set_resgid(ids, 5, 6, 7), 0);
    EXPECT_EQ(ids.fsgid, 6u);
    ASSERT_EQ(set_resuid(ids, 1, 2, 3), 0);
    EXPECT_EQ(ids.fsuid, 2u);
}

}  // namespace
}  // namespace kiln
