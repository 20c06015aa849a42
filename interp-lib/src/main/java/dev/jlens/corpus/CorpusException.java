package dev.jlens.corpus;

/** A corpus that cannot be read: a missing or unreadable file, a malformed row, a column a row does not have. */
public class CorpusException extends RuntimeException {

    /** An error with its message (which names the file, and the row where there is one). */
    public CorpusException(String message) {
        super(message);
    }

    /** An error with its message and cause. */
    public CorpusException(String message, Throwable cause) {
        super(message, cause);
    }
}
