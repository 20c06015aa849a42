package dev.jlens.io;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What the Hub accepts as a repo id, a file name inside a repo and a revision, checked before any of them becomes
 * part of a URL or a cache path (so none can leave the cache folder). Messages name the expected form.
 */
final class HubNames {

    private static final Pattern COMMIT_HASH = Pattern.compile("[0-9a-f]{40}");
    private static final Pattern REPO_NAME_PART = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]*");

    private HubNames() {}

    /** A full 40-digit commit hash (as opposed to a branch or tag). */
    static boolean isCommitHash(String s) {
        return COMMIT_HASH.matcher(s).matches();
    }

    /** {@code name} or {@code org/name}: letters, digits, '-', '_', '.'; no '--' or '..'. */
    static boolean isValidRepoId(String repoId) {
        if (repoId == null || repoId.length() > 96 || repoId.contains("--") || repoId.contains("..")) {
            return false;
        }
        String[] parts = repoId.split("/", -1);
        if (parts.length > 2) {
            return false;
        }
        for (String part : parts) {
            if (!REPO_NAME_PART.matcher(part).matches() || part.endsWith(".")) {
                return false;
            }
        }
        return true;
    }

    static String checkRepoId(String repoId) {
        Objects.requireNonNull(repoId, "repoId");
        if (!isValidRepoId(repoId)) {
            throw new IllegalArgumentException("Invalid Hub repo id '" + repoId + "': expected 'name' or"
                    + " 'org/name' (letters, digits, '-', '_', '.'; no '--' or '..'), e.g. 'gpt2' or"
                    + " 'Qwen/Qwen2.5-0.5B'.");
        }
        return repoId;
    }

    static String checkFilename(String filename) {
        Objects.requireNonNull(filename, "filename");
        if (filename.isBlank() || filename.startsWith("/") || filename.endsWith("/") || filename.contains("\\")) {
            throw new IllegalArgumentException("Invalid file name '" + filename + "': expected a path inside the"
                    + " repo like 'config.json' or 'onnx/model.onnx'.");
        }
        checkSegments(filename, "file name");
        return filename;
    }

    static String checkRevision(String revision) {
        if (revision.isBlank() || revision.startsWith("/") || revision.endsWith("/") || revision.contains("\\")
                || revision.chars().anyMatch(c -> c < 0x20)) {
            throw new IllegalArgumentException("Invalid revision '" + revision + "': expected a branch, tag or"
                    + " commit hash such as 'main' or 'refs/pr/1'.");
        }
        checkSegments(revision, "revision");
        return revision;
    }

    /**
     * Whether a file path matches a pattern as {@code huggingface_hub}'s {@code allow_patterns} do (Python's
     * {@code fnmatch}): {@code *} matches any run of characters, '/' included, {@code ?} one character,
     * {@code [abc]} / {@code [!abc]} a set; a pattern ending in '/' matches everything under that folder.
     */
    static boolean matches(String pattern, String path) {
        return globRegex(pattern).matcher(path).matches();
    }

    static Pattern globRegex(String pattern) {
        Objects.requireNonNull(pattern, "pattern");
        String p = pattern.endsWith("/") ? pattern + "*" : pattern;
        StringBuilder re = new StringBuilder();
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            if (c == '*') {
                re.append(".*");
            } else if (c == '?') {
                re.append('.');
            } else if (c == '[' && p.indexOf(']', i + 2) > 0) {
                int end = p.indexOf(']', i + 2);
                String set = p.substring(i + 1, end);
                boolean negate = set.startsWith("!");
                if (negate) {
                    set = set.substring(1);
                }
                re.append('[').append(negate ? "^" : "").append(set.replace("\\", "\\\\").replace("[", "\\["))
                        .append(']');
                i = end;
            } else {
                re.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return Pattern.compile(re.toString(), Pattern.DOTALL);
    }

    /** Whether a pattern has wildcards, or is one exact file name. */
    static boolean isGlob(String pattern) {
        return pattern.endsWith("/") || pattern.chars().anyMatch(c -> c == '*' || c == '?' || c == '[');
    }

    private static void checkSegments(String path, String what) {
        for (String part : path.split("/")) {
            if (part.isEmpty() || part.equals(".") || part.equals("..")) {
                throw new IllegalArgumentException("Invalid " + what + " '" + path + "': empty, '.' and '..'"
                        + " path segments are not allowed.");
            }
        }
    }
}
