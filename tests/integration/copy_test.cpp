// COPY end to end with the kiln binary: Docker's source and destination rules, --chown, --chmod, --parents,
// --exclude, --link and --from, each checked in the image umoci unpacks.

#include <gtest/gtest.h>

#include "tests/integration/local_build_fixture.hpp"
#include "tests/integration/registry_fixture.hpp"

namespace kiln::test {
namespace {

class CopyTest : public LocalBuildTest {
protected:
    void SetUp() override {
        LocalBuildTest::SetUp();
        if (IsSkipped()) return;
        put("a.txt", "a\n");
        put("b.txt", "b\n");
        put("notes.md", "notes\n");
        put("dir/x", "x\n");
        put("dir/sub/y", "y\n");
        put("passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
        put("group", "root:x:0:\napp:x:1000:\nstaff:x:50:app\n");
    }
};

TEST_F(CopyTest, WildcardsDirectoriesAndDestinationsFollowDockersRules) {
    build_ok(
        "FROM scratch\n"
        "COPY *.txt /multi/\n"
        "COPY dir /contents\n"
        "COPY a.txt /renamed.txt\n"
        "COPY a.txt /contents\n"  // an existing directory takes the file inside it
        "WORKDIR /work\n"
        "COPY b.txt relative/\n"
        "COPY b.txt .\n"
        "COPY missing-* /nothing/\n");
    EXPECT_EQ(content_of("multi/a.txt"), "a\n");
    EXPECT_EQ(content_of("multi/b.txt"), "b\n");
    EXPECT_FALSE(stat_of("multi/notes.md"));
    EXPECT_EQ(content_of("contents/sub/y"), "y\n");  // a directory source copies its contents
    EXPECT_FALSE(stat_of("contents/dir"));
    EXPECT_EQ(content_of("contents/a.txt"), "a\n");
    EXPECT_EQ(content_of("renamed.txt"), "a\n");
    EXPECT_EQ(content_of("work/relative/b.txt"), "b\n");
    EXPECT_EQ(content_of("work/b.txt"), "b\n");
    EXPECT_FALSE(stat_of("nothing"));  // a wildcard matching nothing copies nothing, as in BuildKit
}

TEST_F(CopyTest, MultipleSourcesNeedADirectoryDestination) {
    KilnRun run = build("FROM scratch\nCOPY a.txt b.txt /file\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2: COPY a.txt b.txt /file")) << run.output;
    EXPECT_TRUE(contains(run.output, "must be a directory")) << run.output;
}

TEST_F(CopyTest, EachCopyIsExactlyOneLayerOfWhatItWrote) {
    build_ok("FROM scratch\nCOPY a.txt /one/\nCOPY dir /two/\nCOPY --link b.txt /three/\n");
    EXPECT_EQ(layer_count(), 3u);
    EXPECT_EQ(content_of("three/b.txt"), "b\n");  // --link gives the same result
}

TEST_F(CopyTest, ChownNamesComeFromTheImagesOwnPasswdAndGroup) {
    build_ok(
        "FROM scratch\n"
        "COPY passwd /etc/passwd\n"
        "COPY group /etc/group\n"
        "COPY --chown=app:staff a.txt /deep/new/dir/a.txt\n"
        "COPY --chown=app dir /owned/\n"
        "COPY --chown=1001 b.txt /numeric/b.txt\n");
    // BuildKit gives the directories it creates on the way the --chown owner too.
    for (const char* path : {"deep", "deep/new", "deep/new/dir", "deep/new/dir/a.txt"}) {
        auto st = stat_of(path);
        ASSERT_TRUE(st) << path;
        EXPECT_EQ(st->st_uid, 1000u) << path;
        EXPECT_EQ(st->st_gid, 50u) << path;
    }
    for (const char* path : {"owned", "owned/x", "owned/sub", "owned/sub/y"}) {
        auto st = stat_of(path);
        ASSERT_TRUE(st) << path;
        EXPECT_EQ(st->st_uid, 1000u) << path;
        EXPECT_EQ(st->st_gid, 1000u) << path;  // the user's primary group
    }
    auto numeric = stat_of("numeric/b.txt");
    ASSERT_TRUE(numeric);
    EXPECT_EQ(numeric->st_uid, 1001u);
    EXPECT_EQ(numeric->st_gid, 1001u);
    EXPECT_EQ(stat_of("numeric")->st_uid, 1001u);
    EXPECT_EQ(stat_of("etc")->st_uid, 0u);  // without --chown, root
}

TEST_F(CopyTest, UnknownOrMalformedChownFailsNamingTheInstruction) {
    for (const char* chown : {"ghost", "app:nogroup", "1000:", "a:b:c"}) {
        KilnRun run =
            build(str_cat("FROM scratch\nCOPY passwd /etc/passwd\nCOPY --chown=", chown, " a.txt /a\n"));
        EXPECT_NE(run.exit_code, 0) << chown;
        EXPECT_TRUE(contains(run.output, str_cat("Dockerfile:3: COPY --chown=", chown, " a.txt /a")))
            << run.output;
    }
}

TEST_F(CopyTest, ChmodTakesOctalAndSymbolicModes) {
    put("tool", "#!/bin/sh\n", 0644);
    build_ok(
        "FROM scratch\n"
        "COPY --chmod=0751 a.txt /octal\n"
        "COPY --chmod=u+x,go-r b.txt /symbolic\n"
        "COPY --chmod=640 dir /tree/\n");
    EXPECT_EQ(stat_of("octal")->st_mode & 07777, 0751u);
    EXPECT_EQ(stat_of("symbolic")->st_mode & 07777, 0700u);
    EXPECT_EQ(stat_of("tree/x")->st_mode & 07777, 0640u);
    KilnRun bad = build("FROM scratch\nCOPY --chmod=999 a.txt /bad\n");
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_TRUE(contains(bad.output, "Dockerfile:2")) << bad.output;
    EXPECT_TRUE(contains(bad.output, "between 0 and 07777")) << bad.output;
}

TEST_F(CopyTest, ParentsKeepTheSourcePathBelowTheContextOrThePivot) {
    put("src/app/main.c", "main\n");
    put("src/lib/util.c", "util\n");
    put("src/lib/util.h", "header\n");
    build_ok(
        "FROM scratch\n"
        "COPY --parents src/app/main.c src/*/util.c /kept/\n"
        "COPY --parents ./src/./lib/util.h /pivoted/\n"
        "COPY --parents src/lib /whole/\n");
    EXPECT_EQ(content_of("kept/src/app/main.c"), "main\n");
    EXPECT_EQ(content_of("kept/src/lib/util.c"), "util\n");
    EXPECT_FALSE(stat_of("kept/src/lib/util.h"));
    EXPECT_EQ(content_of("pivoted/lib/util.h"), "header\n");
    EXPECT_FALSE(stat_of("pivoted/src"));
    EXPECT_EQ(content_of("whole/src/lib/util.h"), "header\n");
}

TEST_F(CopyTest, ExcludeLeavesOutWhatItsPatternsMatch) {
    put("app/main.c", "main\n");
    put("app/README.md", "readme\n");
    put("app/tmp/cache", "cache\n");
    put("app/docs/guide.md", "guide\n");
    put("home.txt", "home\n");
    put("home.log", "log\n");
    build_ok(
        "FROM scratch\n"
        "COPY --exclude=*.md --exclude=tmp app/ /app/\n"
        "COPY --exclude=**/*.md app/ /deep/\n"
        "COPY --exclude=*.log hom* /h/\n");
    EXPECT_TRUE(stat_of("app/main.c"));
    EXPECT_FALSE(stat_of("app/README.md"));
    EXPECT_FALSE(stat_of("app/tmp"));
    EXPECT_TRUE(stat_of("app/docs/guide.md"));  // "*.md" stays at the top level, like .dockerignore's
    EXPECT_FALSE(stat_of("deep/docs/guide.md"));
    EXPECT_TRUE(stat_of("h/home.txt"));
    EXPECT_FALSE(stat_of("h/home.log"));
}

TEST_F(CopyTest, FromTakesAStageNameOrIndex) {
    build_ok(
        "FROM scratch AS first\n"
        "COPY a.txt /made-in-first\n"
        "FROM scratch\n"
        "COPY --from=first /made-in-first /by-name\n"
        "COPY --from=0 /made-in-first /by-index\n");
    EXPECT_EQ(content_of("by-name"), "a\n");
    EXPECT_EQ(content_of("by-index"), "a\n");
}

TEST_F(CopyTest, SourceOutsideTheContextIsRefused) {
    KilnRun run = build("FROM scratch\nCOPY ../secret /s\n");
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "Dockerfile:2")) << run.output;
    EXPECT_TRUE(contains(run.output, "outside the build context")) << run.output;
}

using CopyFromImageTest = RegistryBuildTest;

TEST_F(CopyFromImageTest, FromTakesAnImageReference) {
    std::string context =
        context_with(str_cat("FROM scratch\nCOPY --from=", base(), " /etc/passwd /from-image/passwd\n"));
    std::string layout = m_dir.path() + "/layout";
    KilnRun run = run_kiln(
        {"build", "--context", context, "--insecure-pull", "--no-push", "--oci-layout-path", layout});
    ASSERT_EQ(run.exit_code, 0) << run.output;
    ASSERT_TRUE(unpack_layout(layout, "latest", m_dir.path() + "/bundle"));
    auto passwd = read_file(m_dir.path() + "/bundle/rootfs/from-image/passwd");
    ASSERT_TRUE(passwd);
    EXPECT_TRUE(passwd->starts_with("root:x:0:0:")) << *passwd;
}

}  // namespace
}  // namespace kiln::test

namespace kiln::test {
namespace {

TEST_F(CopyTest, HeredocFilesExpandLikeBuildKitAndQuotedDelimitersDoNot) {
    // A backtick escape directive does not change heredoc bodies: BuildKit expands them with '\' as the escape
    // and keeps quotes as text.
    build_ok(
        "# escape=`\n"
        "FROM scratch\n"
        "ARG NAME=kiln\n"
        "COPY <<EOF /greeting\n"
        "hello \"$NAME\" \\$NAME `$NAME\n"
        "EOF\n"
        "COPY <<'EOF' /raw\n"
        "hello \"$NAME\"\n"
        "EOF\n"
        "COPY <<-EOF <<EOF2 /both/\n"
        "\tindented\n"
        "\tEOF\n"
        "second\n"
        "EOF2\n");
    EXPECT_EQ(content_of("greeting"), "hello \"kiln\" $NAME `kiln\n");
    EXPECT_EQ(content_of("raw"), "hello \"$NAME\"\n");
    EXPECT_EQ(content_of("both/EOF"), "indented\n");
    EXPECT_EQ(content_of("both/EOF2"), "second\n");
    EXPECT_EQ(stat_of("greeting")->st_mode & 07777, 0644u);
}

}  // namespace
}  // namespace kiln::test
