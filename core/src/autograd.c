/* The autograd engine: recording nodes, and a non-recursive backward pass. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local bool grad_disabled;
/* called after a leaf's gradient is final in a backward (rt_autograd_set_grad_ready_hook) */
static _Thread_local rt_grad_ready_fn grad_ready_fn;
static _Thread_local void *grad_ready_ctx;

void rt_autograd_set_grad_ready_hook(rt_grad_ready_fn fn, void *ctx)
{
    grad_ready_fn = fn;
    grad_ready_ctx = fn ? ctx : NULL;
}

bool rt_grad_set_enabled(bool on)
{
    bool was = !grad_disabled;
    grad_disabled = !on;
    return was;
}

bool rt_grad_enabled(void) { return !grad_disabled; }

bool rt__needs_grad(int n, struct rt_tensor *const *inputs)
{
    if (grad_disabled)
        return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad)
            return true;
    return false;
}

static struct rt_node *node_new(int n_inputs)
{
    struct rt_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->refcount = 1;
    n->n_inputs = n_inputs;
    if (n_inputs > 0) {
        n->next = calloc((size_t)n_inputs, sizeof *n->next);
        n->in_ndim = calloc((size_t)n_inputs, sizeof *n->in_ndim);
        n->in_shape = calloc((size_t)n_inputs, sizeof *n->in_shape);
        n->in_dtype = calloc((size_t)n_inputs, sizeof *n->in_dtype);
        if (!n->next || !n->in_ndim || !n->in_shape || !n->in_dtype) {
            free(n->next);
            free(n->in_ndim);
            free(n->in_shape);
            free(n->in_dtype);
            free(n);
            return NULL;
        }
    }
    return n;
}

static void drop_saved(struct rt_node *n)
{
    for (int i = 0; i < n->n_saved; i++) {
        rt_tensor_release(n->saved[i]);
        n->saved[i] = NULL;
    }
}

/* Frees nodes whose count reaches zero with an explicit stack: a 10^5-op chain must not
 * overflow the C stack. */
void rt__node_release(struct rt_node *root)
{
    if (!root || --root->refcount > 0)
        return;
    size_t cap = 64, top = 0;
    struct rt_node **stack = malloc(cap * sizeof *stack);
    struct rt_node *local[1];
    if (!stack) { /* degrade to recursion rather than leak */
        stack = local;
        cap = 1;
    }
    stack[top++] = root;
    while (top > 0) {
        struct rt_node *n = stack[--top];
        for (int i = 0; i < n->n_inputs; i++) {
            struct rt_node *m = n->next[i];
            if (m && --m->refcount == 0) {
                if (top == cap) {
                    struct rt_node **bigger = stack == local ? NULL : realloc(stack, cap * 2 * sizeof *stack);
                    if (!bigger) {
                        m->refcount = 1;
                        rt__node_release(m);
                        continue;
                    }
                    stack = bigger;
                    cap *= 2;
                }
                stack[top++] = m;
            }
        }
        drop_saved(n);
        rt_tensor_release(n->pending);
        if (n->leaf) {
            n->leaf->grad_acc = NULL;
            rt_tensor_release(n->leaf);
        }
        free(n->next);
        free(n->in_ndim);
        free(n->in_shape);
        free(n->in_dtype);
        free(n);
    }
    if (stack != local)
        free(stack);
}

/* The node that receives t's gradient: its producer, or (for a leaf) its accumulate node. */
static enum rt_status grad_target(struct rt_tensor *t, struct rt_node **out)
{
    if (t->grad_fn) {
        t->grad_fn->refcount++;
        *out = t->grad_fn;
        return RT_OK;
    }
    if (!t->grad_acc) {
        struct rt_node *acc = node_new(0);
        if (!acc)
            return rt_error(RT_ERR_OOM, "autograd: out of memory");
        acc->name = "AccumulateGrad";
        acc->refcount = 0; /* owned only by the nodes that point to it */
        acc->leaf = t;
        rt_tensor_retain(t);
        t->grad_acc = acc;
    }
    t->grad_acc->refcount++;
    *out = t->grad_acc;
    return RT_OK;
}

enum rt_status rt__record(struct rt_tensor *out, const char *name, rt_vjp_fn vjp, int n,
                          struct rt_tensor *const *inputs, struct rt_node **node_out)
{
    struct rt_node *node = node_new(n);
    if (!node)
        return rt_error(RT_ERR_OOM, "%s: out of memory recording the graph", name);
    node->name = name;
    node->vjp = vjp;
    for (int i = 0; i < n; i++) {
        struct rt_tensor *t = inputs[i];
        if (!t)
            continue;
        node->in_ndim[i] = t->ndim;
        memcpy(node->in_shape[i], t->shape, sizeof node->in_shape[i]);
        node->in_dtype[i] = t->dtype;
        if (t->requires_grad) {
            enum rt_status st = grad_target(t, &node->next[i]);
            if (st != RT_OK) {
                rt__node_release(node);
                return st;
            }
        }
    }
    if (out->grad_fn)
        rt__node_release(out->grad_fn);
    out->grad_fn = node;
    out->requires_grad = true;
    if (node_out)
        *node_out = node;
    return RT_OK;
}

enum rt_status rt__save(struct rt_node *n, struct rt_tensor *t)
{
    if (n->n_saved >= RT_NODE_MAX_SAVED)
        return rt_error(RT_ERR_INTERNAL, "%s: too many saved tensors", n->name);
    struct rt_tensor *alias;
    enum rt_status st = rt__alias(t, t->ndim, t->shape, t->stride, t->offset, &alias);
    if (st != RT_OK)
        return st;
    n->saved[n->n_saved] = alias;
    n->saved_version[n->n_saved] = t->storage->version;
    n->n_saved++;
    return RT_OK;
}

enum rt_status rt_requires_grad_(struct rt_tensor *t, bool on)
{
    if (on && !rt_dtype_is_float(t->dtype))
        return rt_error(RT_ERR_DTYPE, "rt_requires_grad: only float tensors can require grad (got %s)",
                        rt_dtype_name(t->dtype));
    if (!on && t->grad_fn)
        return rt_error(RT_ERR_AUTOGRAD,
                        "rt_requires_grad: cannot turn off grad on a non-leaf tensor (produced by %s); "
                        "use detach()",
                        t->grad_fn->name);
    t->requires_grad = on;
    return RT_OK;
}

const char *rt_tensor_grad_fn_name(const struct rt_tensor *t) { return t->grad_fn ? t->grad_fn->name : NULL; }

void rt_tensor_zero_grad(struct rt_tensor *t)
{
    rt_tensor_release(t->grad);
    t->grad = NULL;
}

/* ---------- backward ---------- */

struct node_list {
    struct rt_node **v;
    size_t n, cap;
};

static bool list_push(struct node_list *l, struct rt_node *x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct rt_node **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

/* Collect every node reachable from root and count each one's incoming edges. */
static enum rt_status collect(struct rt_node *root, uint64_t mark, struct node_list *all)
{
    struct node_list stack = {0};
    enum rt_status st = RT_OK;
    root->mark = mark;
    root->deps = 0;
    if (!list_push(all, root) || !list_push(&stack, root))
        st = rt_error(RT_ERR_OOM, "backward: out of memory");
    while (st == RT_OK && stack.n > 0) {
        struct rt_node *n = stack.v[--stack.n];
        for (int i = 0; i < n->n_inputs; i++) {
            struct rt_node *m = n->next[i];
            if (!m)
                continue;
            if (m->mark != mark) {
                m->mark = mark;
                m->deps = 0;
                if (!list_push(all, m) || !list_push(&stack, m)) {
                    st = rt_error(RT_ERR_OOM, "backward: out of memory");
                    break;
                }
            }
            m->deps++;
        }
    }
    free(stack.v);
    return st;
}

/* pending += g (g summed to the input's shape and cast to its dtype first). */
static enum rt_status accumulate(struct rt_node *from, int i, struct rt_tensor *g)
{
    struct rt_node *m = from->next[i];
    struct rt_tensor *r = g;
    enum rt_status st = RT_OK;
    rt_tensor_retain(r);
    bool same = r->ndim == from->in_ndim[i] &&
                memcmp(r->shape, from->in_shape[i], (size_t)r->ndim * sizeof(int64_t)) == 0;
    if (!same) {
        struct rt_tensor *s;
        st = rt_sum_to_shape(r, from->in_ndim[i], from->in_shape[i], &s);
        rt_tensor_release(r);
        if (st != RT_OK) {
            rt_error_prefix(from->name);
            return st;
        }
        r = s;
    }
    if (r->dtype != from->in_dtype[i]) {
        struct rt_tensor *c;
        st = rt_to_dtype(r, from->in_dtype[i], &c);
        rt_tensor_release(r);
        if (st != RT_OK)
            return st;
        r = c;
    }
    if (!m->pending) {
        m->pending = r;
        return RT_OK;
    }
    struct rt_tensor *sum;
    st = rt_add(m->pending, r, &sum);
    rt_tensor_release(r);
    if (st != RT_OK)
        return st;
    rt_tensor_release(m->pending);
    m->pending = sum;
    return RT_OK;
}

static enum rt_status accumulate_leaf(struct rt_tensor *leaf, struct rt_tensor *g)
{
    if (!leaf->grad) {
        /* Take g when nobody else can see it; otherwise keep a private copy. */
        if (g->refcount == 1 && g->storage->refcount == 1 && rt_tensor_is_contiguous(g)) {
            rt_tensor_retain(g);
            leaf->grad = g;
            return RT_OK;
        }
        return rt_clone(g, &leaf->grad);
    }
    struct rt_tensor *sum;
    enum rt_status st = rt_add(leaf->grad, g, &sum);
    if (st != RT_OK)
        return st;
    rt_tensor_release(leaf->grad);
    leaf->grad = sum;
    return RT_OK;
}

static enum rt_status check_saved(struct rt_node *n)
{
    if (n->released)
        return rt_error(RT_ERR_AUTOGRAD,
                        "backward: trying to go through %s a second time, but its saved values were freed "
                        "after the first backward; pass retainGraph = true the first time",
                        n->name);
    for (int i = 0; i < n->n_saved; i++)
        if (n->saved[i]->storage->version != n->saved_version[i])
            return rt_error(RT_ERR_AUTOGRAD,
                            "backward: a tensor saved by %s was modified in place after it was saved "
                            "(version %llu, expected %llu); clone it before modifying",
                            n->name, (unsigned long long)n->saved[i]->storage->version,
                            (unsigned long long)n->saved_version[i]);
    return RT_OK;
}

static enum rt_status run_node(struct rt_node *n, bool retain)
{
    struct rt_tensor *g = n->pending;
    n->pending = NULL;
    enum rt_status st = RT_OK;
    if (n->leaf) {
        st = accumulate_leaf(n->leaf, g);
        rt_tensor_release(g);
        /* a leaf's node runs once per backward, after every contribution arrived: its gradient is final */
        if (st == RT_OK && grad_ready_fn)
            st = grad_ready_fn(grad_ready_ctx, n->leaf);
        return st;
    }
    if (!g) /* no gradient arrived (all contributions were absent) */
        return RT_OK;
    st = check_saved(n);
    struct rt_tensor *gin_local[4] = {0};
    struct rt_tensor **gin = n->n_inputs <= 4 ? gin_local : calloc((size_t)n->n_inputs, sizeof *gin);
    if (!gin)
        st = rt_error(RT_ERR_OOM, "backward: out of memory");
    if (st == RT_OK)
        st = n->vjp(n, g, gin);
    for (int i = 0; st == RT_OK && i < n->n_inputs; i++)
        if (n->next[i] && gin[i])
            st = accumulate(n, i, gin[i]);
    for (int i = 0; gin && i < n->n_inputs; i++)
        rt_tensor_release(gin[i]);
    if (gin != gin_local)
        free(gin);
    rt_tensor_release(g);
    if (st == RT_OK && !retain) {
        drop_saved(n);
        n->released = true;
    }
    return st;
}

enum rt_status rt_backward(struct rt_tensor *root, struct rt_tensor *grad, bool retain_graph)
{
    static uint64_t mark_counter;
    if (!root->requires_grad)
        return rt_error(RT_ERR_AUTOGRAD,
                        "backward: the tensor does not require grad and has no grad_fn "
                        "(did you forget requiresGrad(), or compute it under noGrad?)");
    struct rt_tensor *g = NULL;
    enum rt_status st;
    if (grad) {
        if (!rt_tensor_same_shape(grad, root)) {
            char a[RT_SHAPE_STR_MAX], b[RT_SHAPE_STR_MAX];
            return rt_error(RT_ERR_SHAPE, "backward: gradient shape %s does not match the tensor's shape %s",
                            rt_shape_str(grad->ndim, grad->shape, a, sizeof a),
                            rt_shape_str(root->ndim, root->shape, b, sizeof b));
        }
        st = rt__same_device("backward (the gradient and the tensor)", root, grad);
        if (st == RT_OK)
            st = rt_to_dtype(grad, root->dtype, &g);
        if (st != RT_OK)
            return st;
    } else {
        if (rt_tensor_numel(root) != 1) {
            char a[RT_SHAPE_STR_MAX];
            return rt_error(RT_ERR_AUTOGRAD,
                            "backward: the tensor has shape %s; backward without a gradient needs a single "
                            "element (pass a gradient of the same shape, or reduce with sum()/mean())",
                            rt_shape_str(root->ndim, root->shape, a, sizeof a));
        }
        st = rt_tensor_full(root->dtype, root->storage->device, root->ndim, root->shape, 1.0, &g);
        if (st != RT_OK)
            return st;
    }
    bool was = rt_grad_set_enabled(false);
    struct rt_node *start = NULL;
    st = grad_target(root, &start); /* holds a ref for the duration */
    if (st != RT_OK) {
        rt_grad_set_enabled(was);
        rt_tensor_release(g);
        return st;
    }
    struct node_list all = {0}, ready = {0};
    st = collect(start, ++mark_counter, &all);
    if (st == RT_OK) {
        rt_tensor_release(start->pending);
        start->pending = g;
        g = NULL;
        if (!list_push(&ready, start))
            st = rt_error(RT_ERR_OOM, "backward: out of memory");
    }
    while (st == RT_OK && ready.n > 0) {
        if (rt_interrupt_pending()) {
            st = rt_error(RT_ERR_INTERRUPTED, "backward: interrupted");
            break;
        }
        struct rt_node *n = ready.v[--ready.n];
        st = run_node(n, retain_graph);
        for (int i = 0; st == RT_OK && i < n->n_inputs; i++) {
            struct rt_node *m = n->next[i];
            if (m && --m->deps == 0 && !list_push(&ready, m))
                st = rt_error(RT_ERR_OOM, "backward: out of memory");
        }
    }
    /* Whatever happened, leave no gradient behind in the graph. */
    for (size_t i = 0; i < all.n; i++) {
        rt_tensor_release(all.v[i]->pending);
        all.v[i]->pending = NULL;
    }
    free(all.v);
    free(ready.v);
    rt_tensor_release(g);
    rt__node_release(start);
    rt_grad_set_enabled(was);
    return st;
}
