package dev.jlens.model;

/**
 * A chat template that could not be rendered: the template itself called {@code raise_exception(message)} (the
 * message is the template's, and {@link #raisedByTemplate()} is true), or the template or its inputs are unusable
 * (no template, a Jinja feature that is not supported, a syntax error).
 */
public final class ChatTemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final boolean raisedByTemplate;

    ChatTemplateException(String message) {
        this(message, false);
    }

    ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
        this.raisedByTemplate = false;
    }

    ChatTemplateException(String message, boolean raisedByTemplate) {
        super(message);
        this.raisedByTemplate = raisedByTemplate;
    }

    /** Whether the template raised this itself with {@code raise_exception} (its message is then the template's). */
    public boolean raisedByTemplate() {
        return raisedByTemplate;
    }
}
