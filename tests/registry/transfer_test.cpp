// What push_image counts as a registry's refusal to move an immutable tag.
#include "registry/transfer.hpp"

#include <gtest/gtest.h>

namespace kiln {
namespace {

TEST(ImmutableTagError, TheWordingsOfTheRegistriesThatHaveImmutableTagsAreRecognised) {
    for (const char* message :
         {"HTTP 400 TAG_INVALID: The image tag '1.2' already exists in the 'app' repository and cannot be "
          "overwritten because the repository is immutable.",
          "HTTP 400 MANIFEST_INVALID: The repository has enabled tag immutability.",
          "HTTP 412 PRECONDITION: Failed to process request due to 'app:1.2' configured as immutable.",
          "HTTP 403 DENIED: This tag is already assigned to an image in this repository and cannot be "
          "updated due "
          "to immutability settings."})
        EXPECT_TRUE(is_immutable_tag_error(Error(message))) << message;
}

TEST(ImmutableTagError, OtherRefusalsAreNot) {
    for (const char* message : {"HTTP 403 DENIED: requested access to the resource is denied",
                                "HTTP 400 MANIFEST_INVALID: manifest invalid", "HTTP 503 UNAVAILABLE"})
        EXPECT_FALSE(is_immutable_tag_error(Error(message))) << message;
}

}  // namespace
}  // namespace kiln
