#pragma once
// The comparison of kiln's image of a Kaniko corpus Dockerfile with buildah's, after undoing the buildah 1.28
// differences that kaniko_corpus_test.cpp lists (B1, B6, B7) and nothing else.

#include <string>
#include <vector>

#include "common/error.hpp"
#include "tests/integration/flat_image.hpp"
#include "tests/integration/kaniko_corpus_cases.hpp"

namespace kiln::test {

struct CorpusImages {
    const PulledImage& kiln;
    const PulledImage& buildah;
    const ImageTree& base_tree;  // the busybox base both were built on
    std::string context;         // the build context directory
};

// One entry per way in which kiln's image differs from buildah's normalised one ("filesystem differs (2):\n
// /x: …"), each listing at most 40 paths or fields; empty when they match. An error is a comparison that
// could not be made (an unreadable layer, a missing context file).
Result<std::vector<std::string>> differences_from_buildah(const CorpusCase& corpus_case,
                                                          const CorpusImages& images);

}  // namespace kiln::test
