/* Handler modules aetaskd must refuse to load (test-aetaskd.sh): built as
 * no-symbol.so, which exports no aetask_handler_module, and as
 * wrong-abi.so, whose handler has an ABI version this aetaskd does not know. */
#include <aetask/aetask-handler.h>

#ifdef WRONG_ABI
static const aetask_handler wrong_abi_handler = {
        .abi_version = AETASK_HANDLER_ABI_VERSION + 1,
        .name = "wrong-abi",
};

AETASK_HANDLER_MODULE(wrong_abi_handler);
#else
/* Something exported, so the module is a valid shared object all the same. */
__attribute__((visibility("default"))) int not_a_handler;
#endif
