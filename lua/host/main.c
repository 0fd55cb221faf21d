/* The `retort` executable: a Lua 5.4 interpreter with the retort core preloaded, a command line
 * and a REPL. Shaped like Lua's own lua.c: main() runs a C function (pmain) under lua_pcall so
 * that even memory errors are reported; every chunk runs through docall(), which installs a
 * message handler that appends a traceback and turns SIGINT into a Lua error via lua_sethook.
 *
 *   retort [options] [script [args...]]      options: -e code, -l mod, -i, -v, -h, --, -
 *   retort run script [args...]              the same, the recipe-runner spelling
 *
 * Choices (see lua/README.md for the user-facing summary):
 *  - Ctrl-C during a computation sets a Lua hook that raises "interrupted!" at the next Lua
 *    instruction AND calls rt_interrupt_request() so long C loops stop too. In the REPL it
 *    returns to the prompt; at the prompt it abandons the line being typed (and any pending
 *    continuation lines). The SIGINT handler stays installed while the REPL lives, so Ctrl-C
 *    never kills a session (Ctrl-\ still does). In a script an uncaught interrupt exits 130.
 *  - The REPL reads with readline (history in ~/.retort_history or $RETORT_HISTORY, an empty
 *    RETORT_HISTORY disables it) only when stdin is a terminal. With stdin not a terminal it reads
 *    plain lines and prints results but no banner, prompts or final newline, so tests and tools
 *    can drive it through a pipe.
 *  - Results are shown by retort.repl (lua/retort/repl.lua): tostring semantics, plain tables
 *    shown briefly. If that module cannot be loaded the host falls back to print().
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath() */
#endif

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "retort/common.h"
#include "retort/dist.h"
#include "retort_bind.h"

#ifndef RETORT_VERSION
#define RETORT_VERSION RT_VERSION_STRING
#endif
/* the Lua modules' folder relative to the executable's (set by cmake/RetortInstall.cmake) */
#ifndef RETORT_LUA_FROM_BIN
#define RETORT_LUA_FROM_BIN "../share/lua/" LUA_VERSION_MAJOR "." LUA_VERSION_MINOR
#endif

#define PROGNAME "retort"
#define HISTORY_MAX 1000
#define EOFMARK "<eof>"
#define MARKLEN (sizeof(EOFMARK) / sizeof(char) - 1)
#define EXIT_INTERRUPTED 130 /* 128 + SIGINT, as shells report it */

static const char *progname = PROGNAME; /* prefix of error messages; NULL in the REPL */

/* ---------------------------------------------------------------- signals ---------------- */

static lua_State *globalL = NULL;
static volatile sig_atomic_t lua_running = 0; /* inside docall(): Ctrl-C interrupts Lua */
static volatile sig_atomic_t got_sigint = 0;  /* a SIGINT arrived since last cleared */
static volatile sig_atomic_t got_sigwinch = 0;

/* Hook set by the signal handler: raise "interrupted!" at the next Lua event. The core's flag is
 * cleared because the interrupt is now delivered as this Lua error (a script may catch it and go
 * on; C loops must not keep failing afterwards). */
static void lstop(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    /* a C loop that saw the core's flag first has raised the interrupt already and consumed the flag
     * (rtb_status_error): raising it again here, perhaps in the frame of the pcall that caught the
     * first, would deliver one Ctrl-C twice */
    if (!rt_interrupt_pending()) return;
    rt_interrupt_clear();
    lua_pushliteral(L, "interrupted!");
    lua_error(L);
}

static void on_sigint(int sig) {
    (void)sig;
    got_sigint = 1;
    if (lua_running) {
        int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
        rt_interrupt_request();
        lua_sethook(globalL, lstop, flag, 1);
    }
}

static void on_sigwinch(int sig) {
    (void)sig;
    got_sigwinch = 1;
}

static void set_signal(int sig, void (*handler)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* ---------------------------------------------------------------- messages --------------- */

static void l_message(const char *pname, const char *msg) {
    if (pname) fprintf(stderr, "%s: ", pname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
}

/* Remembers whether the last reported error was an interrupt (for exit status 130). */
static int last_error_interrupted = 0;
/* The raw integer field exitStatus (1..255) of the last error object that carried one, 0 if none:
 * retort.recipe's usage errors (a mistyped option) exit 2 without a traceback. */
static int last_error_exit_status = 0;

/* Exit status of a script, -e chunk or subcommand that ended in an uncaught error. */
static int failure_status(void) {
    if (last_error_interrupted) return EXIT_INTERRUPTED;
    return last_error_exit_status ? last_error_exit_status : EXIT_FAILURE;
}

static int report(lua_State *L, int status) {
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg == NULL) msg = "(error object is not a string)";
        last_error_interrupted = got_sigint && strstr(msg, "interrupted") != NULL;
        l_message(progname, msg);
        lua_pop(L, 1);
    }
    return status;
}

/* Message handler: turn the error object into a string and append a traceback. An error object
 * with __tostring is shown as that string alone (as lua.c does); when it is a table with a raw
 * integer exitStatus, that becomes the exit status (see failure_status). */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (lua_type(L, 1) == LUA_TTABLE) {
            lua_pushliteral(L, "exitStatus");
            if (lua_rawget(L, 1) == LUA_TNUMBER && lua_isinteger(L, -1)) {
                lua_Integer s = lua_tointeger(L, -1);
                if (s > 0 && s < 256) last_error_exit_status = (int)s;
            }
            lua_pop(L, 1);
        }
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Call the function below its narg arguments with the message handler and Ctrl-C armed. */
static int docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    globalL = L;
    got_sigint = 0;
    last_error_exit_status = 0;
    lua_running = 1;
    int status = lua_pcall(L, narg, nres, base);
    lua_running = 0;
    if (got_sigint) lua_sethook(L, NULL, 0, 0); /* an interrupt that C code consumed first */
    lua_remove(L, base);
    return status;
}

static void print_version(void) {
    printf("%s %s (%s)\n", PROGNAME, RETORT_VERSION, LUA_RELEASE);
    fflush(stdout);
}

static void print_usage(FILE *f) {
    fprintf(f,
            "usage: %s [options] [script [args...]]\n"
            "       %s run script [args...]\n"
            "       %s cache --recipe recipe.lua --out cache.h5 [recipe options]   (also --info, --verify)\n"
            "       %s plot runs/x/metrics.csv [more.csv ...] [--out=plot.svg]     (SVG of the metrics)\n"
            "       %s import-torch in.pth out.h5 --model=NAME    (a PyTorch state dict -> a retort checkpoint)\n"
            "       %s export-torch in.h5 out.pth --model=NAME    (a retort checkpoint -> a PyTorch state dict)\n"
            "       %s export-onnx in.h5 --model=NAME --out=model.onnx   (a retort checkpoint -> an ONNX model)\n"
            "Run a Lua script (a recipe) with the retort library, or open the REPL.\n"
            "Options:\n"
            "  -e code        execute string 'code' (may be repeated)\n"
            "  -l mod         require library 'mod' into global 'mod'\n"
            "  -i             enter the REPL after running the script\n"
            "  -v, --version  show version information\n"
            "  -h, --help     show this help\n"
            "  --             stop handling options\n"
            "  -              run a script read from stdin\n"
            "The script receives its arguments in the global 'arg' (arg[0] is the script) and as '...'.\n"
            "With no script the REPL starts (line editing when stdin is a terminal).\n"
            "Environment: RETORT_LUA_PATH (directory of the Lua modules), RETORT_HISTORY (REPL\n"
            "history file, default ~/.retort_history; empty disables it).\n",
            PROGNAME, PROGNAME, PROGNAME, PROGNAME, PROGNAME, PROGNAME, PROGNAME);
    fflush(f);
}

/* ---------------------------------------------------------------- arguments -------------- */

/* Global 'arg': arg[0] is the script, arg[1..] its arguments, arg[-n..-1] what came before. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
    if (script == argc) script = 0; /* no script name: arg[0] is the program */
    int narg = argc - (script + 1);
    lua_createtable(L, narg, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static int dochunk(lua_State *L, int status) {
    if (status == LUA_OK) status = docall(L, 0, 0);
    return report(L, status);
}

static int dostring(lua_State *L, const char *s, const char *name) {
    return dochunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

static int dolibrary(lua_State *L, const char *name) {
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    int status = docall(L, 1, 1);
    if (status == LUA_OK) lua_setglobal(L, name);
    return report(L, status);
}

static int pushargs(lua_State *L) {
    if (lua_getglobal(L, "arg") != LUA_TTABLE) luaL_error(L, "'arg' is not a table");
    int n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    return n;
}

static int handle_script(lua_State *L, char **argv) {
    const char *fname = argv[0];
    if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0) fname = NULL; /* stdin */
    int status = luaL_loadfile(L, fname);
    if (status == LUA_OK) {
        int n = pushargs(L);
        status = docall(L, n, LUA_MULTRET);
    }
    return report(L, status);
}

enum { HAS_ERROR = 1, HAS_I = 2, HAS_V = 4, HAS_E = 8, HAS_H = 16 };

/* Scan the options; *first is set to the index of the script (argc when none). Returns the
 * flags, or HAS_ERROR with *first the index of the offending argument. */
static int collectargs(char **argv, int argc, int *first) {
    int args = 0;
    if (argc > 1 && strcmp(argv[1], "run") == 0) {
        if (argc < 3) {
            *first = -1; /* "retort run" without a script */
            return HAS_ERROR;
        }
        *first = 2;
        return 0;
    }
    int i;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            *first = i + 1;
            return args;
        } else if (strcmp(a, "-") == 0) {
            break; /* script "-" (stdin) */
        } else if (strcmp(a, "-i") == 0) {
            args |= HAS_I;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
            args |= HAS_V;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            args |= HAS_H;
        } else if (a[1] == 'e' || a[1] == 'l') {
            if (a[1] == 'e') args |= HAS_E;
            if (a[2] == '\0') { /* argument in the next word */
                i++;
                if (i >= argc || argv[i] == NULL || argv[i][0] == '-') {
                    *first = i - 1;
                    return HAS_ERROR | 0x100; /* needs an argument */
                }
            }
        } else {
            *first = i;
            return HAS_ERROR;
        }
    }
    *first = i;
    return args;
}

/* Run -e and -l options in order. */
static int runargs(lua_State *L, char **argv, int n) {
    for (int i = 1; i < n; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l')) continue;
        char opt = a[1];
        const char *extra = a[2] != '\0' ? a + 2 : argv[++i];
        int status = opt == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
        if (status != LUA_OK) return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- REPL input ------------- */

static int stdin_is_tty = 0;
static char *history_path = NULL; /* NULL: no history file */

enum { LINE_EOF = 0, LINE_OK = 1, LINE_CANCELLED = 2 };

static char *rl_line = NULL;
static int rl_line_done = 0;

static void on_rl_line(char *line) {
    rl_line = line;
    rl_line_done = 1;
    rl_callback_handler_remove();
}

/* readline through its callback interface, so that Ctrl-C at the prompt (select() returns
 * EINTR) can abandon the line instead of killing the session (the way Python's REPL does it). */
static int read_tty_line(const char *prompt, char **out) {
    rl_line = NULL;
    rl_line_done = 0;
    got_sigint = 0;
    rl_callback_handler_install(prompt, on_rl_line);
    while (!rl_line_done) {
        int fd = fileno(rl_instream ? rl_instream : stdin);
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        int r = select(fd + 1, &fds, NULL, NULL, NULL);
        if (r < 0 && errno == EINTR) {
            if (got_sigint) {
                got_sigint = 0;
                rl_free_line_state();
                rl_callback_sigcleanup();
                rl_cleanup_after_signal();
                rl_callback_handler_remove();
                fputs("^C\n", rl_outstream ? rl_outstream : stdout);
                fflush(stdout);
                return LINE_CANCELLED;
            }
            if (got_sigwinch) {
                got_sigwinch = 0;
                rl_resize_terminal();
            }
            continue;
        }
        if (r < 0) {
            rl_callback_handler_remove();
            return LINE_EOF;
        }
        rl_callback_read_char();
    }
    *out = rl_line;
    return rl_line ? LINE_OK : LINE_EOF;
}

static int read_plain_line(char **out) {
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    do {
        errno = 0;
        n = getline(&buf, &cap, stdin);
    } while (n < 0 && errno == EINTR && !feof(stdin));
    if (n < 0) {
        free(buf);
        return LINE_EOF;
    }
    *out = buf;
    return LINE_OK;
}

static int prompt_tostring(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/* The prompt string, left on the stack while it is used. _PROMPT may be anything, even a value whose
 * __tostring raises: converted in protected mode, and a failure gives the default prompt and a note
 * (nothing typed at the prompt may end the session). */
static const char *get_prompt(lua_State *L, int firstline) {
    static int noted[2]; /* a failing prompt is noted once, not at every line */
    const char *dflt = firstline ? "> " : ">> ";
    int base = lua_gettop(L);
    if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
        lua_settop(L, base);
        lua_pushstring(L, dflt);
        return lua_tostring(L, -1);
    }
    lua_pushcfunction(L, prompt_tostring);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING) {
        noted[firstline != 0] = 0;
        return lua_tostring(L, -1);
    }
    if (!noted[firstline != 0]) {
        const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "not a string";
        l_message(PROGNAME, lua_pushfstring(L, "%s cannot be shown (%s); using \"%s\"",
                                            firstline ? "_PROMPT" : "_PROMPT2", msg, dflt));
        noted[firstline != 0] = 1;
    }
    lua_settop(L, base);
    lua_pushstring(L, dflt);
    return lua_tostring(L, -1);
}

/* Push the next line (without its newline). Returns LINE_OK, LINE_EOF or LINE_CANCELLED. */
static int pushline(lua_State *L, int firstline) {
    char *b = NULL;
    int r;
    if (stdin_is_tty) {
        const char *prompt = get_prompt(L, firstline);
        r = read_tty_line(prompt, &b);
        lua_pop(L, 1); /* prompt */
    } else {
        r = read_plain_line(&b);
    }
    if (r != LINE_OK) return r;
    size_t l = strlen(b);
    if (l > 0 && b[l - 1] == '\n') b[--l] = '\0';
    if (l > 0 && b[l - 1] == '\r') b[--l] = '\0';
    if (firstline && b[0] == '=') /* Lua 5.1 style: "=expr" */
        lua_pushfstring(L, "return %s", b + 1);
    else
        lua_pushlstring(L, b, l);
    free(b);
    return LINE_OK;
}

static void saveline(const char *line) {
    if (!stdin_is_tty || line[0] == '\0') return;
    add_history(line);
    if (history_path == NULL) return;
    /* append (concurrent sessions keep each other's lines), create when missing, then cap */
    if (append_history(1, history_path) != 0) write_history(history_path);
    history_truncate_file(history_path, HISTORY_MAX);
}

/* A syntax error ending in <eof> means the statement is incomplete: read another line. */
static int incomplete(lua_State *L, int status) {
    if (status == LUA_ERRSYNTAX) {
        size_t lmsg;
        const char *msg = lua_tolstring(L, -1, &lmsg);
        if (lmsg >= MARKLEN && strcmp(msg + lmsg - MARKLEN, EOFMARK) == 0) {
            lua_pop(L, 1);
            return 1;
        }
    }
    return 0;
}

/* Try the line as "return <line>" so that expressions print their values. */
static int addreturn(lua_State *L) {
    const char *line = lua_tostring(L, -1);
    const char *retline = lua_pushfstring(L, "return %s;", line);
    int status = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
    if (status == LUA_OK) {
        lua_remove(L, -2);
        saveline(line);
    } else {
        lua_pop(L, 2);
    }
    return status;
}

/* An assignment to one global name echoes the value ("x = retort.randn(3, 4)" shows x), as in
 * MATLAB; a trailing ';' keeps it quiet ("x = 6;"). Compiled as "<line>; return <name>". */
static int addecho(lua_State *L) {
    const char *line = lua_tostring(L, -1);
    const char *p = line, *name, *end;
    while (*p == ' ' || *p == '\t') p++;
    name = p;
    if (!(isalpha((unsigned char)*p) || *p == '_')) return LUA_ERRSYNTAX;
    while (isalnum((unsigned char)*p) || *p == '_') p++;
    end = p;
    while (*p == ' ' || *p == '\t') p++;
    if (p[0] != '=' || p[1] == '=') return LUA_ERRSYNTAX;
    size_t n = strlen(line);
    while (n > 0 && isspace((unsigned char)line[n - 1])) n--;
    if (n == 0 || line[n - 1] == ';') return LUA_ERRSYNTAX;
    const char *code = lua_pushfstring(L, "%s; return %s", line, lua_pushlstring(L, name, (size_t)(end - name)));
    int status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
    if (status == LUA_OK) {
        lua_replace(L, -3); /* the function over the name: line, function, code */
        lua_pop(L, 1);      /* leaves line, function, as addreturn does */
        saveline(line);
    } else {
        lua_pop(L, 3);
    }
    return status;
}

#define STATUS_CANCELLED (-2)

static int multiline(lua_State *L) {
    for (;;) {
        size_t len;
        const char *line = lua_tolstring(L, 1, &len);
        int status = luaL_loadbuffer(L, line, len, "=stdin");
        if (!incomplete(L, status)) {
            saveline(line);
            return status;
        }
        int r = pushline(L, 0);
        if (r == LINE_CANCELLED) return STATUS_CANCELLED;
        if (r == LINE_EOF) {
            /* report the incomplete statement as lua.c does */
            saveline(line);
            return luaL_loadbuffer(L, line, len, "=stdin");
        }
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
    }
}

/* Read a complete statement and compile it. Returns -1 at end of input, STATUS_CANCELLED after
 * Ctrl-C at a prompt, else the load status with the function (or error message) on the stack. */
static int loadline(lua_State *L) {
    lua_settop(L, 0);
    int r = pushline(L, 1);
    if (r == LINE_EOF) return -1;
    if (r == LINE_CANCELLED) return STATUS_CANCELLED;
    int status = addreturn(L);
    if (status != LUA_OK) status = addecho(L);
    if (status != LUA_OK) status = multiline(L);
    if (status == STATUS_CANCELLED) {
        lua_settop(L, 0);
        return status;
    }
    lua_remove(L, 1);
    return status;
}

/* ---------------------------------------------------------------- REPL completion -------- */

/* Tab completion of names, fields and methods: "retort.ra<TAB>", "x:na<TAB>", "net:for<TAB>".
 * The candidates come from retort.repl.complete(word) (lua/retort/repl.lua), which walks tables
 * and metatable __index chains without running any code, so the walk is testable from Lua; it
 * is called protected, and a failure (or no retort.repl) simply offers nothing. */
static lua_State *completeL = NULL;
static char **completion_list = NULL;
static size_t completion_n = 0, completion_cap = 0;
static int repl_ref = LUA_NOREF; /* the retort.repl module, when it loaded */

static void completion_add(const char *s) {
    for (size_t i = 0; i < completion_n; i++)
        if (strcmp(completion_list[i], s) == 0) return;
    if (completion_n == completion_cap) {
        size_t cap = completion_cap ? 2 * completion_cap : 32;
        char **p = realloc(completion_list, cap * sizeof *p);
        if (p == NULL) return;
        completion_list = p;
        completion_cap = cap;
    }
    char *d = strdup(s);
    if (d) completion_list[completion_n++] = d;
}

static void compute_completions(const char *text) {
    lua_State *L = completeL;
    int top = lua_gettop(L);
    for (size_t i = 0; i < completion_n; i++) free(completion_list[i]);
    completion_n = 0;
    if (L == NULL || repl_ref == LUA_NOREF || !lua_checkstack(L, 4)) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, repl_ref);
    if (lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, "complete") == LUA_TFUNCTION) {
        lua_pushstring(L, text);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TTABLE) {
            lua_Unsigned n = lua_rawlen(L, -1);
            for (lua_Unsigned i = 1; i <= n; i++) {
                if (lua_rawgeti(L, -1, (lua_Integer)i) == LUA_TSTRING) completion_add(lua_tostring(L, -1));
                lua_pop(L, 1);
            }
        }
    }
    lua_settop(L, top);
}

static char *completion_generator(const char *text, int state) {
    static size_t next;
    if (state == 0) {
        compute_completions(text);
        next = 0;
    }
    return next < completion_n ? strdup(completion_list[next++]) : NULL;
}

static char **retort_completion(const char *text, int start, int end) {
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* no file-name completion */
    rl_completion_append_character = '\0';
    return rl_completion_matches(text, completion_generator);
}

static void init_readline(lua_State *L) {
    completeL = L;
    rl_readline_name = "retort";
    rl_catch_signals = 0; /* our SIGINT handler decides; see read_tty_line */
    rl_attempted_completion_function = retort_completion;
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#!";
    stifle_history(HISTORY_MAX);
    const char *h = getenv("RETORT_HISTORY");
    if (h == NULL) {
        const char *home = getenv("HOME");
        if (home && *home) {
            size_t n = strlen(home) + sizeof "/.retort_history";
            history_path = malloc(n);
            if (history_path) snprintf(history_path, n, "%s/.retort_history", home);
        }
    } else if (*h) {
        history_path = strdup(h);
    }
    if (history_path) read_history(history_path); /* missing file: fine */
}

static void free_readline(void) {
    for (size_t i = 0; i < completion_n; i++) free(completion_list[i]);
    free(completion_list);
    completion_list = NULL;
    completion_n = completion_cap = 0;
    free(history_path);
    history_path = NULL;
}

/* ---------------------------------------------------------------- REPL ------------------- */

/* Show the results on the stack: retort.repl.print (brief tables), else the global print. */
static void l_print(lua_State *L) {
    int n = lua_gettop(L);
    if (n == 0) return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    int have = 0;
    if (repl_ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, repl_ref);
        have = lua_getfield(L, -1, "print") == LUA_TFUNCTION;
        lua_remove(L, -2);
        if (!have) lua_pop(L, 1);
    }
    if (!have) lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (docall(L, n, 0) != LUA_OK)
        l_message(progname, lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
    fflush(stdout);
}

/* REPL start-up: load retort.repl (display, help()) and bind the global 'retort'. */
static void repl_setup(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "retort.repl");
    if (docall(L, 1, 1) == LUA_OK && lua_istable(L, -1)) {
        lua_pushvalue(L, -1);
        repl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        if (lua_getfield(L, -1, "help") == LUA_TFUNCTION)
            lua_setglobal(L, "help");
        else
            lua_pop(L, 1);
    } else {
        l_message(PROGNAME, lua_pushfstring(L, "warning: REPL helpers unavailable: %s",
                                            luaL_tolstring(L, -1, NULL)));
        lua_pop(L, 2);
    }
    lua_settop(L, 0);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "retort");
    if (docall(L, 1, 1) == LUA_OK) {
        lua_setglobal(L, "retort");
    } else {
        const char *msg = lua_tostring(L, -1);
        const char *nl = msg ? strchr(msg, '\n') : NULL;
        lua_pushfstring(L, "warning: require \"retort\" failed, the global 'retort' is not set: %s",
                        msg ? lua_pushlstring(L, msg, nl ? (size_t)(nl - msg) : strlen(msg))
                            : "?");
        l_message(PROGNAME, lua_tostring(L, -1));
    }
    lua_settop(L, 0);
}

static void doREPL(lua_State *L) {
    const char *oldprogname = progname;
    progname = NULL; /* no program name on errors in the REPL */
    stdin_is_tty = isatty(STDIN_FILENO);
    if (stdin_is_tty) {
        printf("%s %s \xe2\x80\x94 Lua %s.%s \xe2\x80\x94 type help() or Ctrl-D to quit\n", PROGNAME,
               RETORT_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR);
        fflush(stdout);
        init_readline(L);
    }
    repl_setup(L);
    /* Ctrl-C never ends the session: the handler stays for the REPL's whole life. */
    set_signal(SIGINT, on_sigint, SA_RESTART);
    if (stdin_is_tty) set_signal(SIGWINCH, on_sigwinch, SA_RESTART);
    int status;
    while ((status = loadline(L)) != -1) {
        if (status == STATUS_CANCELLED) continue;
        rt_interrupt_clear();
        if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
        if (status == LUA_OK) {
            l_print(L);
        } else {
            if (got_sigint && stdin_is_tty) putchar('\n'); /* after the terminal's "^C" echo */
            fflush(stdout);
            report(L, status);
        }
        fflush(stdout);
    }
    lua_settop(L, 0);
    if (stdin_is_tty) {
        putchar('\n');
        fflush(stdout);
        rl_callback_handler_remove();
        free_readline();
    }
    set_signal(SIGINT, SIG_DFL, 0);
    if (repl_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, repl_ref);
    repl_ref = LUA_NOREF;
    progname = oldprogname;
}

/* ---------------------------------------------------------------- main ------------------- */

/* The folder of the Lua modules that belong to this executable: <folder of /proc/self/exe>/
 * RETORT_LUA_FROM_BIN (../share/lua/5.4 when installed, so an installed or moved tree needs no
 * environment variable; in the build tree CMake puts a link to the source tree's lua/retort there).
 * The path is resolved, so that messages name the real files (the sources, in the build tree).
 * Writes it to dir and returns 1 when it holds retort/init.lua; else returns 0 and the standard
 * package.path alone is searched (an executable copied on its own). */
static int module_dir_of_executable(char *dir, size_t size) {
    char exe[PATH_MAX], candidate[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    if (n <= 0 || (size_t)n >= sizeof exe) return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL) return 0;
    *slash = '\0';
    int len = snprintf(candidate, sizeof candidate, "%s/%s/retort", exe, RETORT_LUA_FROM_BIN);
    if (len < 0 || (size_t)len >= sizeof candidate) return 0;
    char *real = realpath(candidate, NULL);
    if (real == NULL) return 0;
    len = snprintf(candidate, sizeof candidate, "%s/init.lua", real);
    int found = len > 0 && (size_t)len < sizeof candidate && access(candidate, R_OK) == 0;
    slash = strrchr(real, '/'); /* realpath gives an absolute path: the folder above retort/ */
    if (found && slash != NULL && (size_t)(slash - real) < size) {
        memcpy(dir, real, (size_t)(slash - real));
        dir[slash - real] = '\0';
    } else {
        found = 0;
    }
    free(real);
    return found;
}

/* package.path starts with the modules' folder: $RETORT_LUA_PATH when set, else the one next to
 * the executable (above); retort.core is preloaded (linked in), so no C module is searched for. */
static void set_package_path(lua_State *L) {
    char found[PATH_MAX];
    const char *dir = getenv("RETORT_LUA_PATH");
    if (dir == NULL || *dir == '\0') dir = module_dir_of_executable(found, sizeof found) ? found : NULL;
    lua_getglobal(L, "package");
    if (dir != NULL) {
        lua_getfield(L, -1, "path");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
        lua_setfield(L, -3, "path");
        lua_pop(L, 1);
    }
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_retort_core);
    lua_setfield(L, -2, "retort.core");
    lua_pop(L, 2);
}

static int exit_status = EXIT_SUCCESS;

/* ---------------------------------------------------------------- distributed runs ------- */

/* Under an MPI launcher (mpirun -np N retort run x.lua; retort/dist.h) every rank runs the same program.
 * MPI starts in main() before any thread (OpenMP's pool starts with the first parallel loop). Errors name
 * the rank ("retort: rank 1 of 4: ..."). A rank that fails (an uncaught error, os.exit with a failure
 * status) ends the whole job with MPI_Abort: the others may be waiting for it in a collective. Ranks
 * other than 0 print nothing on stdout (each would repeat rank 0's lines) unless RETORT_DIST_STDOUT=all;
 * stderr stays, for errors. */
static char dist_progname[64];

static void dist_setup(void) {
    if (rt_dist_size() <= 1) return;
    snprintf(dist_progname, sizeof dist_progname, "%s: rank %d of %d", PROGNAME, rt_dist_rank(), rt_dist_size());
    progname = dist_progname;
    const char *keep = getenv("RETORT_DIST_STDOUT");
    if (rt_dist_rank() != 0 && !(keep && strcmp(keep, "all") == 0)) {
        fflush(stdout);
        if (freopen("/dev/null", "w", stdout) == NULL) clearerr(stdout);
    }
}

/* os.exit under several ranks: a failure status ends the job (MPI_Abort), a clean one exits normally
 * (MPI is finalized at exit, when every rank gets there). */
static int dist_os_exit(lua_State *L) {
    int status = lua_isboolean(L, 1) ? (lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE)
                                     : (int)luaL_optinteger(L, 1, EXIT_SUCCESS);
    if (status != EXIT_SUCCESS) {
        fflush(stdout);
        fflush(stderr);
        rt_dist_abort(status);
    }
    lua_pushvalue(L, lua_upvalueindex(1)); /* Lua's own os.exit */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 0);
    return 0;
}

static void dist_wrap_exit(lua_State *L) {
    if (rt_dist_size() <= 1) return;
    if (lua_getglobal(L, "os") == LUA_TTABLE && lua_getfield(L, -1, "exit") == LUA_TFUNCTION) {
        lua_pushcclosure(L, dist_os_exit, 1);
        lua_setfield(L, -2, "exit");
    } else {
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The state every mode runs in: libraries, retort's package path, `arg` (argv[script] is arg[0]),
 * the generational collector, and Ctrl-C as the Lua error "interrupted!" (catchable; uncaught it
 * exits 130). */
static void prepare_state(lua_State *L, char **argv, int argc, int script) {
    luaL_openlibs(L);
    set_package_path(L);
    createargtable(L, argv, argc, script);
    lua_gc(L, LUA_GCRESTART);
    lua_gc(L, LUA_GCGEN, 0, 0);
    set_signal(SIGINT, on_sigint, SA_RESTART);
    dist_wrap_exit(L);
}

static int pmain(lua_State *L) {
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    int script;
    luaL_checkversion(L);
    /* subcommands written in Lua: `retort cache ...` (soft-target caches), `retort plot ...` (SVG
     * plots of metrics.csv); each module's main(arg) gets the words after the subcommand */
    static const char *const subcommands[][3] = {
        {"cache", "return require('retort.cache_cli').main(arg)", "=retort cache"},
        {"plot", "return require('retort.plot_cli').main(arg)", "=retort plot"},
        {"import-torch", "return require('retort.torch_cli').main(arg, 'import')", "=retort import-torch"},
        {"export-torch", "return require('retort.torch_cli').main(arg, 'export')", "=retort export-torch"},
        {"export-onnx", "return require('retort.onnx_cli').main(arg)", "=retort export-onnx"},
    };
    for (size_t i = 0; argc > 1 && i < sizeof subcommands / sizeof subcommands[0]; i++) {
        if (strcmp(argv[1], subcommands[i][0]) != 0) continue;
        prepare_state(L, argv, argc, 1);
        if (dostring(L, subcommands[i][1], subcommands[i][2]) != LUA_OK) exit_status = failure_status();
        return 0;
    }
    int args = collectargs(argv, argc, &script);
    if (args & HAS_ERROR) {
        if (script < 0)
            l_message(PROGNAME " run", "missing script");
        else if (args & 0x100)
            fprintf(stderr, "%s: '%s' needs argument\n", PROGNAME, argv[script]);
        else
            fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME, argv[script]);
        fprintf(stderr, "Try '%s --help' for more information.\n", PROGNAME);
        exit_status = EXIT_FAILURE;
        return 0;
    }
    if (args & HAS_H) {
        print_usage(stdout);
        return 0;
    }
    if (args & HAS_V) print_version();
    prepare_state(L, argv, argc, script);
    if (!runargs(L, argv, script)) {
        exit_status = failure_status();
        return 0;
    }
    if (script < argc && handle_script(L, argv + script) != LUA_OK) {
        exit_status = failure_status();
        return 0;
    }
    if (args & HAS_I)
        doREPL(L);
    else if (script == argc && !(args & (HAS_E | HAS_V)))
        doREPL(L);
    return 0;
}

int main(int argc, char **argv) {
    /* retort has one thread pool, OpenMP's (OpenBLAS runs single-threaded on its tiles). An idle
     * worker that spins a little before it sleeps takes the next loop or GEMM tile at once: the
     * MLP teacher's step is ~6% faster than with OMP_WAIT_POLICY=PASSIVE. libgomp's default spin
     * (300,000 rounds) is far too long when other busy processes share the cores: an epoch of
     * batching took 18 s instead of 0.1 s next to a training run. GOMP_SPINCOUNT=1000 keeps the
     * speed and costs 2x PASSIVE in that worst case. libgomp reads it only at load time, hence the
     * re-exec; a wait policy or spin count the user set is respected; if exec fails, go on. */
    if (getenv("OMP_WAIT_POLICY") == NULL && getenv("GOMP_SPINCOUNT") == NULL) {
        setenv("GOMP_SPINCOUNT", "1000", 0);
        execv("/proc/self/exe", argv);
    }
    if (rt_dist_init() != RT_OK) { /* started by mpirun/srun: MPI first, before any thread */
        l_message(PROGNAME, rt_error_msg());
        return EXIT_FAILURE;
    }
    dist_setup();
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        l_message(argv[0] ? argv[0] : PROGNAME, "cannot create state: not enough memory");
        return EXIT_FAILURE;
    }
    lua_gc(L, LUA_GCSTOP);
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    report(L, status);
    if ((status != LUA_OK || exit_status != EXIT_SUCCESS) && rt_dist_size() > 1) {
        fflush(stdout); /* this rank failed: end the job, the others may wait for it in a collective */
        fflush(stderr);
        rt_dist_abort(status != LUA_OK ? EXIT_FAILURE : exit_status);
    }
    lua_close(L);
    if (status != LUA_OK) return EXIT_FAILURE;
    return exit_status;
}
