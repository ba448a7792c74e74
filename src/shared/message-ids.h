/* MESSAGE_ID= values of aetask's important journal events; the catalog in
 * catalog/aetask.catalog explains each for `journalctl -x`. */
#pragma once

#define AETASK_MESSAGE_WORKER_DIED       "246a2c1d82ee415dbf822de31e7a7c4d"  /* client: worker connection died */
#define AETASK_MESSAGE_CHECKOUT_TIMEOUT  "ed9e1caa621444e78d42ef3f012cb0ae"  /* client: checkout timed out */
#define AETASK_MESSAGE_WORKER_HUNG       "d7b60246375f40548e0fa4a8f57287a8"  /* server: hung worker killed */
#define AETASK_MESSAGE_WORKER_CRASHED    "7111fdac5d664c5580699b9c45690a7c"  /* server: worker died on a signal or failed */
#define AETASK_MESSAGE_WORKER_STARTED    "9d9bbea5605c4b8783ac5259d59cc997"  /* server: worker forked */
#define AETASK_MESSAGE_WORKER_EXITED     "5320718722cc4261a95ff722f619b153"  /* server: worker ended normally */
