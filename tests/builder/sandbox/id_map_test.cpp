// Id maps and subordinate id ranges: the text formats the kernel and shadow's files use.

#include "builder/sandbox/id_map.hpp"

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

TEST(IdMap, ParsesTheKernelsColumnsAndFormatsThemBack) {
    auto map = parse_id_map("         0       1001          1\n         1     100000      65535\n");
    ASSERT_TRUE(map) << map.error().message();
    EXPECT_EQ(*map, (IdMap{{0, 1001, 1}, {1, 100000, 65535}}));
    EXPECT_EQ(format_id_map(*map), "0 1001 1\n1 100000 65535\n");
}

TEST(IdMap, RejectsMalformedLines) {
    EXPECT_FALSE(parse_id_map("0 1001\n"));
    EXPECT_FALSE(parse_id_map("0 x 1\n"));
    EXPECT_FALSE(parse_id_map("0 0 4294967296\n"));
}

TEST(IdMap, RecognisesTheInitialNamespace) {
    EXPECT_TRUE(is_initial_id_map({{0, 0, 4294967295u}}));
    EXPECT_FALSE(is_initial_id_map({{0, 0, 65536}}));
    EXPECT_FALSE(is_initial_id_map({{0, 1001, 1}, {1, 100000, 65535}}));
}

TEST(IdMap, IdentityOfANamespaceKeepsOneLinePerParentExtent) {
    // Merged into "0 0 65536", the line would span two extents of the parent, which the kernel refuses.
    EXPECT_EQ(identity_of({{1, 100000, 65535}, {0, 1001, 1}}), (IdMap{{0, 0, 1}, {1, 1, 65535}}));
    EXPECT_EQ(describe_inside_ids({{1, 100000, 65535}, {0, 1001, 1}}), "0-65535");
    EXPECT_EQ(identity_of({{0, 1001, 1}, {5, 100000, 10}}), (IdMap{{0, 0, 1}, {5, 5, 10}}));
    EXPECT_EQ(describe_inside_ids({{0, 1001, 1}, {5, 100000, 10}}), "0, 5-14");
}

class SubordinateRangeTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-subid-"));
        m_file = m_dir.path() + "/subuid";
    }
    TempDir m_dir;
    std::string m_file;
};

TEST_F(SubordinateRangeTest, PicksTheLargestRangeOfTheUserByNameOrUid) {
    ASSERT_TRUE(write_file_atomic(m_file,
                                  "# comment\nother:100000:65536\nbuilder:200000:1000\n"
                                  "1234:300000:70000\nbroken line\nbuilder:400000:5000\n"));
    auto range = find_subordinate_range(m_file, "builder", 1234);
    ASSERT_TRUE(range) << range.error().message();
    ASSERT_TRUE(range->has_value());
    EXPECT_EQ((*range)->start, 300000u);
    EXPECT_EQ((*range)->count, 70000u);
}

TEST_F(SubordinateRangeTest, NoEntryOrNoFileGivesNone) {
    ASSERT_TRUE(write_file_atomic(m_file, "other:100000:65536\n"));
    EXPECT_FALSE(find_subordinate_range(m_file, "builder", 1234)->has_value());
    EXPECT_FALSE(find_subordinate_range(m_dir.path() + "/missing", "builder", 1234)->has_value());
}

}  // namespace
}  // namespace kiln
