#include "images/media_type.hpp"

namespace kiln {
namespace {

bool valid_media_type_part(std::string_view part) {
    if (part.empty() || part.size() > 127) return false;
    auto alphanumeric = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
    if (!alphanumeric(part[0])) return false;
    for (char c : part)
        if (!alphanumeric(c) && std::string_view("!#$&^_.+-").find(c) == std::string_view::npos) return false;
    return true;
}

}  // namespace

bool is_valid_media_type(std::string_view type) {
    size_t slash = type.find('/');
    if (slash == std::string_view::npos) return false;
    return valid_media_type_part(type.substr(0, slash)) && valid_media_type_part(type.substr(slash + 1));
}

bool is_index_media_type(std::string_view type) {
    return type == media_type::oci_index || type == media_type::docker_manifest_list;
}

bool is_manifest_media_type(std::string_view type) {
    return type == media_type::oci_manifest || type == media_type::docker_manifest;
}

bool is_schema1_media_type(std::string_view type) {
    return type == media_type::docker_schema1 || type == media_type::docker_schema1_signed;
}

bool is_layer_media_type(std::string_view type) {
    return type == media_type::oci_layer || type == media_type::oci_layer_gzip || type == media_type::oci_layer_zstd ||
           type == media_type::oci_layer_nondistributable || type == media_type::oci_layer_nondistributable_gzip ||
           type == media_type::oci_layer_nondistributable_zstd || type == media_type::docker_layer_gzip ||
           type == media_type::docker_layer_foreign_gzip || type == media_type::docker_layer_zstd;
}

bool is_nondistributable_layer_media_type(std::string_view type) {
    return type == media_type::oci_layer_nondistributable || type == media_type::oci_layer_nondistributable_gzip ||
           type == media_type::oci_layer_nondistributable_zstd || type == media_type::docker_layer_foreign_gzip;
}

Compression layer_compression(std::string_view type) {
    if (type.ends_with("+gzip") || type.ends_with(".tar.gzip")) return Compression::gzip;
    if (type.ends_with("+zstd") || type.ends_with(".tar.zstd")) return Compression::zstd;
    return Compression::none;
}

std::string_view layer_media_type(ManifestFormat format, Compression compression) {
    if (format == ManifestFormat::docker) {
        // Docker's schema 2 has no uncompressed layer type of its own; registries accept the OCI one.
        switch (compression) {
            case Compression::gzip: return media_type::docker_layer_gzip;
            case Compression::zstd: return media_type::docker_layer_zstd;
            case Compression::none: return media_type::oci_layer;
        }
    }
    switch (compression) {
        case Compression::gzip: return media_type::oci_layer_gzip;
        case Compression::zstd: return media_type::oci_layer_zstd;
        case Compression::none: return media_type::oci_layer;
    }
    return media_type::oci_layer;
}

std::string_view manifest_media_type(ManifestFormat format) {
    return format == ManifestFormat::docker ? media_type::docker_manifest : media_type::oci_manifest;
}

std::string_view config_media_type(ManifestFormat format) {
    return format == ManifestFormat::docker ? media_type::docker_config : media_type::oci_config;
}

std::string_view compression_name(Compression compression) {
    switch (compression) {
        case Compression::gzip: return "gzip";
        case Compression::zstd: return "zstd";
        case Compression::none: return "none";
    }
    return "?";
}

}  // namespace kiln
