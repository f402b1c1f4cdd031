package gearlift.shopstandin;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Parser for the environment-file format that systemd's {@code EnvironmentFile=} accepts.
 *
 * <p>Follows systemd's env-file state machine: {@code KEY=value} lines, lines whose first
 * non-blank character is {@code #} or {@code ;} are comments, values may be single-quoted
 * (literal) or double-quoted (backslash escapes for {@code " \ ` $}, backslash-newline joins
 * lines), unquoted values have trailing whitespace removed and support backslash escapes and
 * backslash-newline continuation. A {@code #} after a value is part of the value, as in systemd.
 * Lines without {@code =} and invalid key names are ignored (the caller is told their count).
 */
final class EnvFile {
    private static final Pattern VALID_KEY = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

    private EnvFile() {}

    static final class Result {
        final Map<String, String> values;
        final int ignoredLines;

        Result(Map<String, String> values, int ignoredLines) {
            this.values = values;
            this.ignoredLines = ignoredLines;
        }
    }

    static Result read(Path path) throws IOException {
        return parse(Files.readString(path, StandardCharsets.UTF_8));
    }

    private enum St {
        PRE_KEY, KEY, PRE_VALUE, VALUE, VALUE_ESCAPE, SQ, DQ, DQ_ESCAPE, COMMENT, COMMENT_ESCAPE
    }

    static Result parse(String text) {
        Map<String, String> out = new LinkedHashMap<>();
        int[] ignored = {0};
        StringBuilder key = new StringBuilder();
        StringBuilder val = new StringBuilder();
        // Length of val up to the last non-whitespace (or quoted) char: trailing blanks of an
        // unquoted value are dropped, blanks inside quotes are kept.
        int keep = 0;
        St st = St.PRE_KEY;
        String s = text.endsWith("\n") ? text : text + "\n";
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (st) {
                case PRE_KEY:
                    if (c == '#' || c == ';') {
                        st = St.COMMENT;
                    } else if (!isBlank(c) && c != '\n' && c != '\r') {
                        st = St.KEY;
                        key.setLength(0);
                        key.append(c);
                    }
                    break;
                case KEY:
                    if (c == '\n' || c == '\r') {
                        ignored[0]++; // a line without '='
                        st = St.PRE_KEY;
                    } else if (c == '=') {
                        st = St.PRE_VALUE;
                        val.setLength(0);
                        keep = 0;
                    } else {
                        key.append(c);
                    }
                    break;
                case PRE_VALUE:
                    if (c == '\n' || c == '\r') {
                        st = St.PRE_KEY;
                        put(out, key, val, keep, ignored);
                    } else if (c == '\'') {
                        st = St.SQ;
                    } else if (c == '"') {
                        st = St.DQ;
                    } else if (c == '\\') {
                        st = St.VALUE_ESCAPE;
                    } else if (!isBlank(c)) {
                        st = St.VALUE;
                        val.append(c);
                        keep = val.length();
                    }
                    break;
                case VALUE:
                    if (c == '\n' || c == '\r') {
                        st = St.PRE_KEY;
                        put(out, key, val, keep, ignored);
                    } else if (c == '\\') {
                        st = St.VALUE_ESCAPE;
                    } else {
                        val.append(c);
                        if (!isBlank(c)) {
                            keep = val.length();
                        }
                    }
                    break;
                case VALUE_ESCAPE:
                    st = St.VALUE;
                    if (c != '\n') { // backslash-newline is a continuation
                        val.append(c);
                        keep = val.length();
                    }
                    break;
                case SQ:
                    if (c == '\'') {
                        st = St.PRE_VALUE;
                    } else {
                        val.append(c);
                        keep = val.length();
                    }
                    break;
                case DQ:
                    if (c == '"') {
                        st = St.PRE_VALUE;
                    } else if (c == '\\') {
                        st = St.DQ_ESCAPE;
                    } else {
                        val.append(c);
                        keep = val.length();
                    }
                    break;
                case DQ_ESCAPE:
                    st = St.DQ;
                    if (c == '"' || c == '\\' || c == '`' || c == '$') {
                        val.append(c);
                    } else if (c != '\n') {
                        val.append('\\').append(c);
                    }
                    keep = val.length();
                    break;
                case COMMENT:
                    if (c == '\\') {
                        st = St.COMMENT_ESCAPE;
                    } else if (c == '\n' || c == '\r') {
                        st = St.PRE_KEY;
                    }
                    break;
                case COMMENT_ESCAPE:
                    st = St.COMMENT;
                    break;
                default:
                    throw new IllegalStateException(st.name());
            }
        }
        if (st == St.SQ || st == St.DQ || st == St.DQ_ESCAPE) {
            ignored[0]++; // unterminated quote at end of file: drop that assignment
        }
        return new Result(out, ignored[0]);
    }

    private static void put(
            Map<String, String> out, StringBuilder key, StringBuilder val, int keep, int[] ignored) {
        String k = key.toString().strip();
        if (!VALID_KEY.matcher(k).matches()) {
            ignored[0]++;
            return;
        }
        out.put(k, val.substring(0, Math.min(keep, val.length())));
    }

    private static boolean isBlank(char c) {
        return c == ' ' || c == '\t';
    }
}
