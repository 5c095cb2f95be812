// A minimal client of llama.cpp's public C API (libllama) for checking quant4j's GGUF bert exports: for each line of
// stdin, llama.cpp's own tokenisation and its pooled, L2-normalised sentence embedding, one JSON object per line.
// Not part of quant4j; tools/bert_gguf_check.sh builds and runs it. (llama.cpp's examples/embedding does the same,
// but the shared build here is configured without examples.)
#include <llama.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char ** argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s model.gguf < lines\n", argv[0]); return 2; }
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    struct llama_context_params cp = llama_context_default_params();
    cp.embeddings = true;
    cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512;
    cp.n_threads = 1; cp.n_threads_batch = 1;
    struct llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    int dim = llama_model_n_embd(model);
    char line[65536];
    llama_token ids[1024];
    while (fgets(line, sizeof line, stdin)) {
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        int n = llama_tokenize(vocab, line, (int) len, ids, 1024, true, false);
        if (n < 0) { fprintf(stderr, "too many tokens\n"); return 1; }
        if (n > 512) { ids[511] = ids[n - 1]; n = 512; }  // keep [SEP], as quant4j truncates
        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_encode(ctx, llama_batch_get_one(ids, n)) != 0) { fprintf(stderr, "llama_encode failed\n"); return 1; }
        const float * e = llama_get_embeddings_seq(ctx, 0);
        if (!e) { fprintf(stderr, "no pooled embedding (pooling type none?)\n"); return 1; }
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double) e[i] * e[i];
        double norm = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
        printf("{\"tokens\":[");
        for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
        printf("],\"embedding\":[");
        for (int i = 0; i < dim; i++) printf(i ? ",%.8g" : "%.8g", e[i] / norm);
        printf("]}\n");
    }
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
