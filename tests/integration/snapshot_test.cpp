// Snapshots of RUN steps, built by the kiln binary: Kaniko's --ignore-path, --ignore-var-run and
// --snapshot-mode, and the walk's reuse of one step's after-state as the next step's before-state.

#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

using SnapshotBuildTest = RunBuildTest;

TEST_F(SnapshotBuildTest, IgnorePathLeavesThePathOutOfEveryLayer) {
    put("cache.txt", "copied\n");
    build_ok(
        "FROM base\n"
        "RUN mkdir -p /opt/cache /opt/keep && echo x > /opt/cache/f && echo y > /opt/keep/f\n"
        "COPY cache.txt /opt/cache/copied\n",
        {"--ignore-path=/opt/cache"});
    EXPECT_FALSE(any_layer_has("opt/cache"));
    EXPECT_EQ(content_of("opt/keep/f"), "y\n");
}

TEST_F(SnapshotBuildTest, IgnorePathLeavesThePathOutOfWalkSnapshotsToo) {
    build_ok("FROM base\nRUN mkdir -p /opt/cache /opt/keep && echo x > /opt/cache/f && echo y > /opt/keep/f\n",
             {"--ignore-path=/opt/cache", "--snapshotter=walk"});
    EXPECT_FALSE(any_layer_has("opt/cache"));
    EXPECT_EQ(content_of("opt/keep/f"), "y\n");
}

TEST_F(SnapshotBuildTest, VarRunIsLeftOutOfWalkSnapshotsByDefault) {
    build_ok("FROM base\nRUN mkdir -p /var/run/app && echo 1 > /var/run/app/pid && echo 2 > /kept\n",
             {"--snapshotter=walk"});
    EXPECT_FALSE(any_layer_has("var/run"));
    EXPECT_EQ(content_of("kept"), "2\n");
}

TEST_F(SnapshotBuildTest, VarRunIsLeftOutByDefault) {
    build_ok(
        "FROM base\nRUN mkdir -p /var/run/app /var/lib/app && echo 1 > /var/run/app/pid && echo 2 > "
        "/var/lib/app/x\n");
    EXPECT_FALSE(any_layer_has("var/run"));
    EXPECT_EQ(content_of("var/lib/app/x"), "2\n");
}

TEST_F(SnapshotBuildTest, IgnoreVarRunFalseKeepsVarRun) {
    build_ok("FROM base\nRUN mkdir -p /var/run/app && echo 1 > /var/run/app/pid\n",
             {"--ignore-var-run=false"});
    EXPECT_EQ(content_of("var/run/app/pid"), "1\n");
}

// The walk keeps RUN's after-state for the next RUN; a COPY in between must make the next RUN walk again, or
// the deletion of the copied file would go unseen.
TEST_F(SnapshotBuildTest, DeletionOfACopiedFileBetweenRunsReachesTheLayer) {
    put("copied.txt", "from the context\n");
    build_ok("FROM base\nRUN echo a > /a\nCOPY copied.txt /copied.txt\nRUN rm /copied.txt && echo b > /b\n",
             {"--snapshotter=walk"});
    EXPECT_FALSE(exists("copied.txt"));
    EXPECT_EQ(content_of("b"), "b\n");
}

TEST_F(SnapshotBuildTest, DeletionOfAWorkdirBetweenRunsReachesTheLayer) {
    build_ok("FROM base\nRUN echo a > /a\nWORKDIR /made/by/workdir\nRUN rmdir /made/by/workdir\n",
             {"--snapshotter=walk"});
    EXPECT_TRUE(exists("made/by"));
    EXPECT_FALSE(exists("made/by/workdir"));
}

TEST_F(SnapshotBuildTest, ConsecutiveRunsEachSeeTheOthersChanges) {
    build_ok("FROM base\nRUN echo 1 > /one\nRUN rm /one && echo 2 > /two\nRUN echo 3 >> /two\n",
             {"--snapshotter=walk"});
    EXPECT_FALSE(exists("one"));
    EXPECT_EQ(content_of("two"), "2\n3\n");
    EXPECT_EQ(layer_count(), 4u);  // the base's one, and one per RUN
}

// A directory removed and made again hides what the layers below had in it.
TEST_F(SnapshotBuildTest, RecreatedDirectoryHidesItsOldContents) {
    build_ok(
        "FROM base\nRUN mkdir -p /d/sub && echo old > /d/old && echo old > /d/sub/f\n"
        "RUN rm -rf /d && mkdir -p /d/sub && echo new > /d/new\n",
        {"--snapshotter=walk"});
    EXPECT_FALSE(exists("d/old"));
    EXPECT_FALSE(exists("d/sub/f"));
    EXPECT_EQ(content_of("d/new"), "new\n");
}

TEST_F(SnapshotBuildTest, TimeModeMissesAChmodThatTheDefaultCatches) {
    const std::string dockerfile = "FROM base\nRUN echo x > /f && chmod 644 /f\nRUN chmod 600 /f\n";
    build_ok(dockerfile, {"--snapshotter=walk", "--snapshot-mode=time"});
    EXPECT_EQ(stat_of("f")->st_mode & 07777, 0644u);
    build_ok(dockerfile, {"--snapshotter=walk"});
    EXPECT_EQ(stat_of("f")->st_mode & 07777, 0600u);
}

TEST_F(SnapshotBuildTest, FullModeCatchesNewContentWithTheOldSizeAndMtime) {
    build_ok(
        "FROM base\nRUN echo aaaa > /f && touch -d '2020-01-01 00:00:00' /f\n"
        "RUN echo bbbb > /f && touch -d '2020-01-01 00:00:00' /f\n",
        {"--snapshotter=walk", "--snapshot-mode=full"});
    EXPECT_EQ(content_of("f"), "bbbb\n");
}

}  // namespace
}  // namespace kiln::test
