package org.maliang;

/**
 * A failure reported by libmaliang.so: {@link #status()} is the ml_status, the message is ml_last_error(). A file that
 * could not be read or written (ML_ERR_IO: folder missing, permissions, disk full) has a message that starts with
 * "I/O error: ", so a user sees at once that the disk, not the data or the settings, is the problem.
 */
public class MaLiangException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int status;

    public MaLiangException(int status, String message) {
        super(describe(status, message));
        this.status = status;
    }

    static String describe(int status, String message) {
        String m = message == null ? "" : message;
        if (status == MaLiang.ML_ERR_IO && !m.regionMatches(true, 0, "I/O error", 0, 9)) return "I/O error: " + m;
        return m;
    }

    /** ml_status: 1 argument, 2 input, 3 cancelled, 4 backend, 5 internal, 6 I/O (a file could not be read or written). */
    public int status() { return status; }

    public boolean isCancelled() { return status == MaLiang.ML_ERR_CANCELLED; }

    /** True for ML_ERR_IO: a file could not be read or written (folder missing, permissions, disk full). */
    public boolean isIoError() { return status == MaLiang.ML_ERR_IO; }
}
