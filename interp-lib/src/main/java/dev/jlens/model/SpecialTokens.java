package dev.jlens.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Set;

/**
 * A tokenizer's BOS, EOS and PAD tokens, and every id that ends generation. Each role comes from
 * {@code tokenizer_config.json} ({@code bos_token}, ...), else from {@code config.json} ({@code bos_token_id}, ...);
 * where neither file mentions it, from the token the tokenizer's own post-processor adds (Llama's {@code <s>}), else
 * from a special added token with a conventional name ({@code <|endoftext|>}, {@code <s>}, {@code <bos>}, ...), which
 * is how GPT-2's bare {@code tokenizer.json} gets {@code <|endoftext|>} as BOS and EOS, as in TransformerLens. A role
 * set to {@code null} in tokenizer_config.json and absent from config.json means the model has no such token.
 *
 * @param eosIds the EOS token and any further ids config.json lists under {@code eos_token_id} (not copied: the
 *               tokenizer hands out copies)
 */
record SpecialTokens(OptionalLong bos, OptionalLong eos, OptionalLong pad, long[] eosIds) {

    // Conventional names, in order of preference, for models whose files name no BOS/EOS/PAD token.
    private static final List<String> BOS_NAMES =
            List.of("<s>", "<bos>", "<|bos|>", "<|begin_of_text|>", "<|startoftext|>", "<|endoftext|>");
    private static final List<String> EOS_NAMES =
            List.of("</s>", "<eos>", "<|eos|>", "<|end_of_text|>", "<|endoftext|>");
    private static final List<String> PAD_NAMES = List.of("<pad>", "<|pad|>", "[PAD]", "<|padding|>");

    /** Which end of the post-processor's template holds a role's token. */
    private enum TemplateEnd { FIRST, LAST }

    /** Resolves the roles from the config files, the post-processor and conventional names, in that order. */
    static SpecialTokens resolve(TokenizerFiles files, Vocabulary vocab) {
        Resolver r = new Resolver(files, vocab);
        OptionalLong bos = r.role("bos", BOS_NAMES, Optional.of(TemplateEnd.FIRST));
        OptionalLong eos = r.role("eos", EOS_NAMES, Optional.of(TemplateEnd.LAST));
        OptionalLong pad = r.role("pad", PAD_NAMES, Optional.empty());
        Set<Long> eosAll = new LinkedHashSet<>();
        eos.ifPresent(eosAll::add);
        for (long id : r.configIds("eos_token_id")) {
            eosAll.add(id);
        }
        return new SpecialTokens(bos, eos, pad, eosAll.stream().mapToLong(Long::longValue).toArray());
    }

    private record Resolver(TokenizerFiles files, Vocabulary vocab) {

        OptionalLong role(String role, List<String> names, Optional<TemplateEnd> templateEnd) {
            String key = role + "_token";
            boolean explicitNone = false;
            if (files.tokCfg().filter(c -> c.has(key)).isPresent()) {
                JsonNode n = files.tokCfg().get().get(key);
                String content = n.isTextual() ? n.asText()
                        : n.isObject() && n.path("content").isTextual() ? n.get("content").asText() : null;
                if (content != null) {
                    return OptionalLong.of(vocab.id(content).orElseThrow(() -> new IllegalArgumentException(
                            files.tokCfgFile() + " names " + key + " '" + content + "', which is not in the vocabulary of "
                                    + files.file())));
                }
                if (!n.isNull()) {
                    throw new IllegalArgumentException(files.tokCfgFile() + ": " + key + " must be a string, an object"
                            + " with \"content\", or null; got " + n);
                }
                explicitNone = true;
            }
            String idKey = role + "_token_id";
            long[] ids = configIds(idKey);
            if (ids.length > 0) {
                return OptionalLong.of(ids[0]);
            }
            if (explicitNone || configMentions(idKey)) {
                return OptionalLong.empty();
            }
            if (templateEnd.isPresent()) {
                OptionalLong fromTemplate = templateToken(files.root().path("post_processor"), templateEnd.get());
                if (fromTemplate.isPresent()) {
                    return fromTemplate;
                }
            }
            for (String name : names) {
                if (vocab.specialAdded().contains(name)) {
                    return vocab.id(name);
                }
            }
            return OptionalLong.empty();
        }

        /** Ids under {@code key} in config.json (an int or a list, also in {@code text_config}); none if absent. */
        long[] configIds(String key) {
            if (files.modelCfg().isEmpty()) {
                return new long[0];
            }
            JsonNode cfg = files.modelCfg().get();
            JsonNode n = cfg.has(key) ? cfg.get(key) : cfg.path("text_config").path(key);
            List<JsonNode> items = new ArrayList<>();
            if (n.isArray()) {
                n.forEach(items::add);
            } else if (!n.isMissingNode() && !n.isNull()) {
                items.add(n);
            }
            List<Long> out = new ArrayList<>();
            for (JsonNode item : items) {
                if (item.isIntegralNumber() && item.longValue() < 0) {
                    continue; // some configs write pad_token_id -1 for "no pad token"
                }
                if (!item.isIntegralNumber() || item.longValue() >= vocab.size()) {
                    throw new IllegalArgumentException(files.modelCfgFile() + ": " + key + " " + n + " is not a token"
                            + " id of " + files.file() + " (valid ids 0.." + (vocab.size() - 1) + ")");
                }
                out.add(item.longValue());
            }
            return out.stream().mapToLong(Long::longValue).toArray();
        }

        private boolean configMentions(String key) {
            return files.modelCfg().filter(c -> c.has(key) || c.path("text_config").has(key)).isPresent();
        }

        private static OptionalLong templateToken(JsonNode proc, TemplateEnd end) {
            boolean first = end == TemplateEnd.FIRST;
            String type = proc.path("type").asText("");
            switch (type) {
                case "Sequence": {
                    for (JsonNode p : proc.path("processors")) {
                        OptionalLong id = templateToken(p, end);
                        if (id.isPresent()) {
                            return id;
                        }
                    }
                    return OptionalLong.empty();
                }
                case "TemplateProcessing": {
                    JsonNode single = proc.path("single");
                    if (single.size() == 0) {
                        return OptionalLong.empty();
                    }
                    JsonNode piece = single.get(first ? 0 : single.size() - 1).path("SpecialToken");
                    if (piece.isMissingNode()) {
                        return OptionalLong.empty();
                    }
                    JsonNode ids = proc.path("special_tokens").path(piece.path("id").asText()).path("ids");
                    return ids.size() == 1 ? OptionalLong.of(ids.get(0).asLong()) : OptionalLong.empty();
                }
                case "BertProcessing":
                case "RobertaProcessing": {
                    JsonNode pair = proc.path(first ? "cls" : "sep");
                    return pair.size() == 2 ? OptionalLong.of(pair.get(1).asLong()) : OptionalLong.empty();
                }
                default:
                    return OptionalLong.empty();
            }
        }
    }
}
