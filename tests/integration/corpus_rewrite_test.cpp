// The FROM-rewriting rules of corpus_rewrite.hpp on the shapes the Kaniko corpus uses, and the case table
// checked against the corpus's BUILDABILITY.tsv so that neither can drift from the other.

#include <set>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/corpus_rewrite.hpp"
#include "tests/integration/kaniko_corpus_cases.hpp"

namespace kiln::test {
namespace {

constexpr const char* k_registry = "127.0.0.1:5000";

RewrittenDockerfile rewrite(const std::string& text, const std::vector<std::string>& build_args = {}) {
    auto rewritten = rewrite_for_local_registry(text, k_registry, build_args);
    EXPECT_TRUE(rewritten) << rewritten.error().message();
    return rewritten ? *rewritten : RewrittenDockerfile{};
}

TEST(CorpusRewrite, LiteralImagesMoveUnderTheMirrorKeepingTheirTag) {
    auto result =
        rewrite("FROM debian:10.13\nRUN echo \"FROM x\"\nFROM gcr.io/distroless/base:latest as base\n");
    EXPECT_EQ(result.text,
              "FROM 127.0.0.1:5000/mirror/debian:10.13\nRUN echo \"FROM x\"\n"
              "FROM 127.0.0.1:5000/mirror/distroless/base:latest as base\n");
    EXPECT_EQ(result.mirror_references,
              (std::vector<std::string>{"127.0.0.1:5000/mirror/debian:10.13",
                                        "127.0.0.1:5000/mirror/distroless/base:latest"}));
}

TEST(CorpusRewrite, PinnedDigestsBecomeTagsOrGiveWayToTheTag) {
    EXPECT_EQ(mirror_image("alpine@sha256:5ce5f501c457015c4b91f91a15ac69157d9b06f1a75cf9107bf2b62e0843983a",
                           k_registry),
              "127.0.0.1:5000/mirror/alpine:sha256-5ce5f501c457");
    EXPECT_EQ(
        mirror_image(
            "docker.io/library/busybox:latest@sha256:afe605d272837ce1732f390966166c2afff5391208ddd57de109"
            "42748694049d",
            k_registry),
        "127.0.0.1:5000/mirror/library/busybox:latest");
}

TEST(CorpusRewrite, UntaggedImagesResolveToLatest) {
    auto result = rewrite("FROM alpine\n");
    EXPECT_EQ(result.text, "FROM 127.0.0.1:5000/mirror/alpine\n");
    EXPECT_EQ(result.mirror_references, std::vector<std::string>{"127.0.0.1:5000/mirror/alpine:latest"});
}

TEST(CorpusRewrite, ScratchAndStageNamesStayWhateverTheirCase) {
    std::string text =
        "FROM scratch as base\nCOPY a /a\nFrom base as first\nFROM alpine AS BUG_stage\nFROM bug_STAGE\n";
    auto result = rewrite(text);
    EXPECT_EQ(result.text,
              "FROM scratch as base\nCOPY a /a\nFrom base as first\n"
              "FROM 127.0.0.1:5000/mirror/alpine AS BUG_stage\nFROM bug_STAGE\n");
}

TEST(CorpusRewrite, GlobalArgDefaultsFeedingAFromAreRewrittenWithTheirQuotes) {
    auto result = rewrite("ARG IMAGE_NAME=\"busybox:latest\"\n\nFROM $IMAGE_NAME\nARG IMAGE_NAME=other\n");
    EXPECT_EQ(result.text,
              "ARG IMAGE_NAME=\"127.0.0.1:5000/mirror/busybox:latest\"\n\nFROM $IMAGE_NAME\n"
              "ARG IMAGE_NAME=other\n");
    EXPECT_EQ(result.mirror_references, std::vector<std::string>{"127.0.0.1:5000/mirror/busybox:latest"});
    EXPECT_EQ(rewrite("ARG IMAGE_NAME='busybox:latest'\nFROM $IMAGE_NAME\n").text,
              "ARG IMAGE_NAME='127.0.0.1:5000/mirror/busybox:latest'\nFROM $IMAGE_NAME\n");
}

TEST(CorpusRewrite, VariablesInsideAnImageOrAnArgAreKept) {
    auto two_level = rewrite("ARG A=3.9\nARG B=alpine:${A}\nFROM ${B}\n");
    EXPECT_EQ(two_level.text, "ARG A=3.9\nARG B=127.0.0.1:5000/mirror/alpine:${A}\nFROM ${B}\n");
    EXPECT_EQ(two_level.mirror_references, std::vector<std::string>{"127.0.0.1:5000/mirror/alpine:3.9"});
    auto empty_value = rewrite("ARG VARIANT=\"\"\nARG VERSION=1\nFROM busybox${VARIANT}:1.3${VERSION}\n");
    EXPECT_EQ(
        empty_value.text,
        "ARG VARIANT=\"\"\nARG VERSION=1\nFROM 127.0.0.1:5000/mirror/busybox${VARIANT}:1.3${VERSION}\n");
    EXPECT_EQ(empty_value.mirror_references, std::vector<std::string>{"127.0.0.1:5000/mirror/busybox:1.31"});
}

TEST(CorpusRewrite, BuildArgsDecideWhatAnArgDrivenFromPulls) {
    auto result = rewrite("ARG image\nFROM ${image}\nARG file\nCOPY $file /foo\n",
                          {"image=scratch", "file=context/foo"});
    EXPECT_EQ(result.text, "ARG image\nFROM ${image}\nARG file\nCOPY $file /foo\n");
    EXPECT_TRUE(result.mirror_references.empty());
}

TEST(CorpusRewrite, ContinuationLinesOfOtherInstructionsAreNotInstructions) {
    auto result = rewrite("FROM debian:10.13\nRUN echo a \\\n  FROM x \\\n  # FROM y\n  && true\n");
    EXPECT_EQ(result.text,
              "FROM 127.0.0.1:5000/mirror/debian:10.13\nRUN echo a \\\n  FROM x \\\n  # FROM y\n  && true\n");
}

TEST(CorpusRewrite, AContinuedFromIsRefused) {
    EXPECT_FALSE(rewrite_for_local_registry("FROM \\\n  alpine\n", k_registry, {}));
}

TEST(KanikoCorpusTable, HoldsExactlyTheClassABCDockerfilesOfBuildability) {
    std::string corpus = kaniko_corpus_dir();
    if (corpus.empty()) GTEST_SKIP() << "../shared/corpora is absent";
    auto tsv = read_file(corpus + "/BUILDABILITY.tsv");
    ASSERT_TRUE(tsv) << tsv.error().message();
    std::set<std::string> expected;
    for (const std::string& line : split(*tsv, '\n')) {
        std::vector<std::string> columns = split(line, '\t');
        if (columns.size() > 3 && (columns[3] == "A" || columns[3] == "B" || columns[3] == "C"))
            expected.insert(columns[3] + " " + columns[0]);
    }
    std::set<std::string> listed;
    for (const CorpusCase& corpus_case : kaniko_corpus_cases())
        listed.insert(str_cat(corpus_case.build_class, " ", corpus_case.dockerfile));
    EXPECT_EQ(listed, expected);
    EXPECT_EQ(kaniko_corpus_cases().size(), 62u);
}

}  // namespace
}  // namespace kiln::test
