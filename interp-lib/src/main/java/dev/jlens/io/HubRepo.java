package dev.jlens.io;

import java.util.Objects;

/**
 * One Hub repository: its kind (model or dataset) and id. The kind decides where it lives in the cache
 * ({@code models--org--name} or {@code datasets--org--name}, as in Python's {@code huggingface_hub}), its URLs
 * ({@code /org/name/resolve/...} or {@code /datasets/org/name/resolve/...}, and the API's
 * {@code /api/datasets/org/name/revision/...}) and how messages name it.
 */
record HubRepo(Type type, String id) {

    /** The repository kinds this client reads. */
    enum Type {
        MODEL("models", "", "repo"),
        DATASET("datasets", "datasets/", "dataset repo");

        final String plural;
        final String urlPrefix;
        final String noun;

        Type(String plural, String urlPrefix, String noun) {
            this.plural = plural;
            this.urlPrefix = urlPrefix;
            this.noun = noun;
        }
    }

    HubRepo {
        Objects.requireNonNull(type, "type");
        HubNames.checkRepoId(id);
    }

    static HubRepo model(String id) {
        return new HubRepo(Type.MODEL, id);
    }

    static HubRepo dataset(String id) {
        return new HubRepo(Type.DATASET, id);
    }

    boolean isDataset() {
        return type == Type.DATASET;
    }

    /** The repo's folder name in the cache: {@code models--org--name} or {@code datasets--org--name}. */
    String cacheFolderName() {
        return type.plural + "--" + id.replace("/", "--");
    }

    /** The repo's path on the Hub, after the endpoint: {@code org/name} or {@code datasets/org/name}. */
    String urlPath() {
        return type.urlPrefix + id;
    }

    /** The repo's web page. */
    String page(String endpoint) {
        return endpoint + "/" + urlPath();
    }

    /** How messages name it: {@code repo 'org/name'} or {@code dataset repo 'org/name'}. */
    String describe() {
        return type.noun + " '" + id + "'";
    }

    @Override
    public String toString() {
        return describe();
    }
}
