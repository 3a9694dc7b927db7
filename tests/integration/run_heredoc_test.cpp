// RUN with heredocs, built by the kiln binary and checked in the unpacked image and its history. buildah
// cannot run these, so the expectations are BuildKit's, written by hand.

#include "tests/integration/run_build_fixture.hpp"

namespace kiln::test {
namespace {

using RunHeredocTest = RunBuildTest;

TEST_F(RunHeredocTest, AHeredocAloneIsAScriptForTheShell) {
    build_ok(R"DF(FROM base
RUN <<EOF
echo one > /script
echo two >> /script
EOF
)DF");
    EXPECT_EQ(content_of("script"), "one\ntwo\n");
    EXPECT_EQ(last_history(), "RUN /bin/sh -c echo one > /script\necho two >> /script\n");
}

TEST_F(RunHeredocTest, AShebangHeredocRunsAsItsOwnFileThatLeavesNoTrace) {
    build_ok(R"DF(FROM base
RUN <<EOF
#!/bin/sh
echo "$0" > /script-path
EOF
)DF");
    EXPECT_EQ(content_of("script-path"), "/dev/pipes/EOF\n");
    EXPECT_FALSE(any_layer_has("dev"));
    EXPECT_EQ(last_history(), "RUN /bin/sh -c /dev/pipes/EOF");
}

TEST_F(RunHeredocTest, AHeredocCanFeedACommand) {
    build_ok(R"DF(FROM base
RUN <<EOF sh
echo via-sh > /fed
EOF
)DF");
    EXPECT_EQ(content_of("fed"), "via-sh\n");
    EXPECT_EQ(last_history(), "RUN /bin/sh -c <<EOF sh\necho via-sh > /fed\nEOF");
}

TEST_F(RunHeredocTest, TwoHeredocsInOneRun) {
    build_ok(R"DF(FROM base
RUN cat <<FIRST > /first && cat <<SECOND > /second
alpha
FIRST
beta
SECOND
)DF");
    EXPECT_EQ(content_of("first"), "alpha\n");
    EXPECT_EQ(content_of("second"), "beta\n");
}

TEST_F(RunHeredocTest, DashHeredocsLoseTheirLeadingTabs) {
    build_ok(
        "FROM base\n"
        "RUN <<-EOF\n\techo script > /chomped-script\n\tEOF\n"
        "RUN cat <<-EOF > /chomped-file\n\t\tindented\n\tEOF\n");
    EXPECT_EQ(content_of("chomped-script"), "script\n");
    EXPECT_EQ(content_of("chomped-file"), "indented\n");
}

TEST_F(RunHeredocTest, AQuotedDelimiterKeepsTheShellFromExpanding) {
    build_ok(R"DF(FROM base
ENV WHO=world
RUN cat <<'EOF' > /quoted
hello $WHO
EOF
RUN cat <<EOF > /unquoted
hello $WHO
EOF
)DF");
    EXPECT_EQ(content_of("quoted"), "hello $WHO\n");
    EXPECT_EQ(content_of("unquoted"), "hello world\n");
}

TEST_F(RunHeredocTest, HistoryListsTheStagesArgsWithEnvWinning) {
    build_ok(R"DF(FROM base
ARG FIRST=one
ARG UNSET
ARG SHADOWED=from-arg
ENV SHADOWED=from-env
RUN echo "$FIRST" > /first
)DF");
    EXPECT_EQ(content_of("first"), "one\n");
    EXPECT_EQ(last_history(),
              "RUN |3 FIRST=one UNSET= SHADOWED=from-env /bin/sh -c echo \"$FIRST\" > /first");
}

TEST_F(RunHeredocTest, ExecFormHistoryIsTheArgvJoinedBySpaces) {
    build_ok("FROM base\nRUN [\"/bin/sh\", \"-c\", \"echo exec > /exec\"]\n");
    EXPECT_EQ(content_of("exec"), "exec\n");
    EXPECT_EQ(last_history(), "RUN /bin/sh -c echo exec > /exec");
}

}  // namespace
}  // namespace kiln::test
