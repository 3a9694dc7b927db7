#pragma once
// Media types of the OCI image spec and of Docker's schema 2, and what they say about a blob.

#include <string_view>

namespace kiln {

namespace media_type {
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view oci_layer_nondistributable = "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view oci_layer_nondistributable_gzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view oci_layer_nondistributable_zstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
inline constexpr std::string_view oci_layout_header = "application/vnd.oci.layout.header.v1+json";

inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view docker_layer_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view docker_layer_foreign_gzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
inline constexpr std::string_view docker_layer_zstd = "application/vnd.docker.image.rootfs.diff.tar.zstd";
inline constexpr std::string_view docker_schema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view docker_schema1_signed = "application/vnd.docker.distribution.manifest.v1+prettyjws";
}  // namespace media_type

enum class Compression { none, gzip, zstd };

// Which manifest flavour an image is written as.
enum class ManifestFormat { oci, docker };

// True when `type` has the RFC 6838 type/subtype shape the OCI spec requires of every mediaType
// (each part 1–127 characters of [A-Za-z0-9!#$&^_.+-], starting alphanumeric).
bool is_valid_media_type(std::string_view type);
bool is_index_media_type(std::string_view type);
bool is_manifest_media_type(std::string_view type);
bool is_schema1_media_type(std::string_view type);
bool is_layer_media_type(std::string_view type);
// True for layer types that registries must not receive (Docker "foreign", OCI "nondistributable").
bool is_nondistributable_layer_media_type(std::string_view type);
// The compression a layer media type declares; none for unknown types.
Compression layer_compression(std::string_view type);
// The layer media type for a manifest flavour and compression.
std::string_view layer_media_type(ManifestFormat format, Compression compression);
std::string_view manifest_media_type(ManifestFormat format);
std::string_view config_media_type(ManifestFormat format);
std::string_view compression_name(Compression compression);

}  // namespace kiln
