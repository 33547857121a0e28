/*
 * mem_hot: the embedded profile's hotstore, in process memory. Presence is a
 * chained hash table; link codes a small fixed table with expiry. Every
 * operation completes inline (its callback runs before the call returns).
 */
#ifndef FC_STORE_MEM_HOT_H
#define FC_STORE_MEM_HOT_H

#include "store/hotstore.h"

#define MEM_HOT_LINKS 16384         /* pending link codes at most */
#define MEM_HOT_LINKS_PER_ACCOUNT 4 /* pending link codes per account */

FC_WUR int mem_hot_open(hotstore_t **out);

#endif
