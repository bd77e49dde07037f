"""Every GraphQL document orderbot sends to the Shopify Admin API.

Each is validated against Shopify's schema (and checked for deprecated fields) by tests/shopify/test_operations.py.
Mutations select `userErrors { field message }` so the client can turn them into a ShopifyUserError.
"""

FULFILLMENT_FIELDS = """
fragment FulfillmentFields on Fulfillment {
  id
  status
  createdAt
  updatedAt
  trackingInfo(first: 3) { number company url }
}
"""

# What the rules need of an order. Of its payment: whether it can be captured (against which authorization, and when
# that expires) or marked as paid, and its methods' names, all free; how much can be captured costs 2 points, so only
# single-order reads ask for it (CAPTURABLE_AMOUNT). Sizes are bounded so that a page stays under Shopify's
# 1,000-point maximum requested cost per query (connections cost 2 + first × node); line items are only fetched for
# one order at a time.
ORDER_FIELDS = (
    """
fragment OrderFields on Order {
  id
  name
  createdAt
  updatedAt
  closed
  closedAt
  cancelledAt
  test
  displayFinancialStatus
  displayFulfillmentStatus
  tags
  email
  customer { displayName defaultEmailAddress { emailAddress } }
  totalPriceSet { shopMoney { amount currencyCode } }
  fulfillments(first: 5) { ...FulfillmentFields }
  fulfillmentsCount { count }
  capturable
  canMarkAsPaid
  paymentGatewayNames
  transactions(capturable: true, first: 3) { id authorizationExpiresAt }
  fulfillmentOrders(first: 10) {
    nodes {
      id
      status
      requestStatus
      createdAt
      updatedAt
      fulfillAt
      fulfillBy
      assignedLocation { name location { id fulfillmentService { serviceName } } }
      fulfillmentHolds { id reason reasonNotes }
      supportedActions { action }
    }
  }
}
"""
    + FULFILLMENT_FIELDS
)

# An order shipped in more parts than ORDER_FIELDS reads (its fulfillmentsCount says so): all of them, up to
# Shopify's cap of 250 items in an array (sized by `first`, this stays under the 1,000-point maximum).
ORDER_FULFILLMENTS = (
    """
query OrderFulfillments($id: ID!) {
  order(id: $id) {
    fulfillments(first: 250) { ...FulfillmentFields }
  }
}
"""
    + FULFILLMENT_FIELDS
)

# Orders a page (ORDERS_PAGE) or a batch (ORDERS_BY_ID): as many as Shopify's 1,000-point maximum requested cost
# per query allows, an order's fields costing 71 (2 + 14 × 71 = 996 and 14 × 71 = 994; tests/shopify/
# test_operations.py checks both are the largest that fit). The throughput is set by the actual cost, which Shopify
# charges after the refund (an order with one fulfillment order costs about 20), not by the page size.
ORDERS_PAGE_SIZE = 14
ORDERS_BY_ID_BATCH = 14

# Reconciliation: one page of orders matching a search query (see domain.scan_plan).
ORDERS_PAGE = (
    """
query OrdersPage($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes { ...OrderFields }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + ORDER_FIELDS
)

# Reconciliation: the orders it must re-read, by id (at most ORDERS_BY_ID_BATCH; null for an order Shopify no longer
# has). `nodes` is sized by its ids, as a connection is by `first`.
ORDERS_BY_ID = (
    """
query OrdersById($ids: [ID!]!) {
  nodes(ids: $ids) { ...OrderFields }
}
"""
    + ORDER_FIELDS
)

# A bulk run's check before acting: whether each order is still as orderbot stored it (its updatedAt) and its archived
# and cancelled state, and nothing more. One point an order (`nodes(ids:)` costs its ids × (1 + a node's selection),
# scalars are free), against 71 for OrderFields.
ORDER_STATES_BATCH = 14
ORDER_STATES = """
query OrderStates($ids: [ID!]!) {
  nodes(ids: $ids) { ... on Order { id updatedAt closedAt cancelledAt } }
}
"""

# Reconciliation between full sweeps: the orders whose fulfillment orders changed (a hold placed or released, a
# fulfillment service's answer), closed ones included. 2 + 250 points a page.
CHANGED_FULFILLMENT_ORDERS = """
query ChangedFulfillmentOrders($first: Int!, $after: String, $query: String) {
  fulfillmentOrders(first: $first, after: $after, query: $query, includeClosed: true, sortKey: UPDATED_AT) {
    nodes { orderId }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# What an authorized payment still holds, in the customer's currency (an order's page leaves it out: see ORDER_FIELDS).
CAPTURABLE_AMOUNT = "totalCapturableSet { presentmentMoney { amount currencyCode } }"

# An action's check before acting when it needs no line items (all but a fulfilment): requests 73 points, not ORDER's
# 593, so a click does not wait for budget it will not be charged.
ORDER_WITHOUT_LINES = (
    """
query OrderWithoutLines($id: ID!) {
  order(id: $id) { ...OrderFields """
    + CAPTURABLE_AMOUNT
    + """ }
}
"""
    + ORDER_FIELDS
)

ORDER = (
    """
query Order($id: ID!) {
  order(id: $id) {
    ...OrderFields
    """
    + CAPTURABLE_AMOUNT
    + """
    fulfillmentOrders(first: 10) {
      nodes { id lineItems(first: 50) { nodes { id productTitle sku remainingQuantity totalQuantity } } }
    }
  }
}
"""
    + ORDER_FIELDS
)

# fulfillment_orders/* and fulfillment_holds/* webhooks name a fulfillment order, not its order.
ORDER_OF_FULFILLMENT_ORDER = (
    """
query OrderOfFulfillmentOrder($id: ID!) {
  fulfillmentOrder(id: $id) { order { ...OrderFields } }
}
"""
    + ORDER_FIELDS
)

# orderCancel answers a job: Shopify cancels the order in the background, and the job is done once it has tried.
JOB = """
query Job($id: ID!) {
  job(id: $id) { id done }
}
"""

# Where a fulfillment order may move (the Move form, read when it opens): each location with whether the whole
# fulfillment order can move there, Shopify's reason when it cannot, and how many of its items the location stocks.
# LOCATIONS_FOR_MOVE_FIRST bounds the list (a shop has up to 1,000 locations), and the cost: 2 + 25 × 4 points.
LOCATIONS_FOR_MOVE_FIRST = 25
LOCATIONS_FOR_MOVE = """
query LocationsForMove($id: ID!, $first: Int!) {
  fulfillmentOrder(id: $id) {
    id
    locationsForMove(first: $first) {
      nodes {
        location { id name }
        movable
        message
        availableLineItemsCount { count }
        unavailableLineItemsCount { count }
      }
    }
  }
}
"""

SHOP_AND_SCOPES = """
query ShopAndScopes {
  shop { name myshopifyDomain ianaTimezone currencyCode }
  currentAppInstallation { accessScopes { handle } }
}
"""

# --- mutations (the actions) ------------------------------------------------------------------------------------

FULFILLMENT_CREATE = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id status trackingInfo(first: 5) { number company url } }
    userErrors { field message }
  }
}
"""

# Tracking for a shipment that went out without it (an app or a person marked it shipped, no number synced).
TRACKING_INFO_UPDATE = """
mutation TrackingInfoUpdate(
  $fulfillmentId: ID!
  $trackingInfoInput: FulfillmentTrackingInput!
  $notifyCustomer: Boolean
) {
  fulfillmentTrackingInfoUpdate(
    fulfillmentId: $fulfillmentId
    trackingInfoInput: $trackingInfoInput
    notifyCustomer: $notifyCustomer
  ) {
    fulfillment { id status trackingInfo(first: 5) { number company url } }
    userErrors { field message }
  }
}
"""

FULFILLMENT_REQUEST_SUBMIT = """
mutation FulfillmentRequestSubmit($id: ID!, $message: String, $notifyCustomer: Boolean) {
  fulfillmentOrderSubmitFulfillmentRequest(id: $id, message: $message, notifyCustomer: $notifyCustomer) {
    submittedFulfillmentOrder { id status requestStatus }
    userErrors { field message }
  }
}
"""

CANCELLATION_REQUEST_SUBMIT = """
mutation CancellationRequestSubmit($id: ID!, $message: String) {
  fulfillmentOrderSubmitCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { id status requestStatus }
    userErrors { field message }
  }
}
"""

HOLD_RELEASE = """
mutation HoldRelease($id: ID!, $holdIds: [ID!]) {
  fulfillmentOrderReleaseHold(id: $id, holdIds: $holdIds) {
    fulfillmentOrder { id status }
    userErrors { field message }
  }
}
"""

ORDER_CLOSE = """
mutation OrderClose($input: OrderCloseInput!) {
  orderClose(input: $input) {
    order { id closed closedAt updatedAt }
    userErrors { field message }
  }
}
"""

ORDER_OPEN = """
mutation OrderOpen($input: OrderOpenInput!) {
  orderOpen(input: $input) {
    order { id closed closedAt updatedAt }
    userErrors { field message }
  }
}
"""

FULFILLMENT_CANCEL = """
mutation FulfillmentCancel($id: ID!) {
  fulfillmentCancel(id: $id) {
    fulfillment { id status }
    userErrors { field message }
  }
}
"""

ORDER_CANCEL = """
mutation OrderCancel(
  $orderId: ID!
  $reason: OrderCancelReason!
  $restock: Boolean!
  $refundMethod: OrderCancelRefundMethodInput
  $notifyCustomer: Boolean
  $staffNote: String
) {
  orderCancel(
    orderId: $orderId
    reason: $reason
    restock: $restock
    refundMethod: $refundMethod
    notifyCustomer: $notifyCustomer
    staffNote: $staffNote
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

# Capture what the authorization holds (OrderCaptureInput: the amount in the customer's currency, which must be named
# when it differs from the shop's).
ORDER_CAPTURE = """
mutation OrderCapture($input: OrderCaptureInput!) {
  orderCapture(input: $input) {
    transaction { id kind status }
    userErrors { field message }
  }
}
"""

# Record a payment received outside Shopify (a bank deposit, cash on delivery) for the outstanding balance.
ORDER_MARK_AS_PAID = """
mutation OrderMarkAsPaid($input: OrderMarkAsPaidInput!) {
  orderMarkAsPaid(input: $input) {
    order { id displayFinancialStatus updatedAt }
    userErrors { field message }
  }
}
"""

# Shopify deletes only some orders (archived or cancelled ones); it cannot be undone.
ORDER_DELETE = """
mutation OrderDelete($orderId: ID!) {
  orderDelete(orderId: $orderId) {
    deletedId
    userErrors { field message code }
  }
}
"""

# Assign a fulfillment order to another location (all its unfulfilled items: no fulfillmentOrderLineItems). When none
# of it has shipped, Shopify moves the fulfillment order itself, so movedFulfillmentOrder is the one sent, at its new
# location; otherwise the moved items are in a new fulfillment order and originalFulfillmentOrder keeps the rest.
FULFILLMENT_ORDER_MOVE = """
mutation FulfillmentOrderMove($id: ID!, $newLocationId: ID!) {
  fulfillmentOrderMove(id: $id, newLocationId: $newLocationId) {
    movedFulfillmentOrder { id status assignedLocation { name location { id } } }
    originalFulfillmentOrder { id status }
    userErrors { field message code }
  }
}
"""

TAGS_ADD = """
mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) {
    node { id }
    userErrors { field message }
  }
}
"""

# --- webhook subscriptions (`python -m bot setup-webhooks`) ------------------------------------------------------
# `uri`, not the deprecated `callbackUrl`/`endpoint`; the mandatory privacy topics are not subscribable here.

WEBHOOK_SUBSCRIPTIONS = """
query WebhookSubscriptions($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    nodes { id topic uri }
    pageInfo { hasNextPage endCursor }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation WebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}
"""

WEBHOOK_SUBSCRIPTION_DELETE = """
mutation WebhookSubscriptionDelete($id: ID!) {
  webhookSubscriptionDelete(id: $id) {
    deletedWebhookSubscriptionId
    userErrors { field message }
  }
}
"""

ALL_DOCUMENTS = {
    "OrdersPage": ORDERS_PAGE,
    "OrdersById": ORDERS_BY_ID,
    "OrderStates": ORDER_STATES,
    "ChangedFulfillmentOrders": CHANGED_FULFILLMENT_ORDERS,
    "Order": ORDER,
    "OrderWithoutLines": ORDER_WITHOUT_LINES,
    "OrderOfFulfillmentOrder": ORDER_OF_FULFILLMENT_ORDER,
    "Job": JOB,
    "OrderFulfillments": ORDER_FULFILLMENTS,
    "LocationsForMove": LOCATIONS_FOR_MOVE,
    "ShopAndScopes": SHOP_AND_SCOPES,
    "FulfillmentCreate": FULFILLMENT_CREATE,
    "TrackingInfoUpdate": TRACKING_INFO_UPDATE,
    "FulfillmentRequestSubmit": FULFILLMENT_REQUEST_SUBMIT,
    "CancellationRequestSubmit": CANCELLATION_REQUEST_SUBMIT,
    "HoldRelease": HOLD_RELEASE,
    "OrderClose": ORDER_CLOSE,
    "OrderOpen": ORDER_OPEN,
    "FulfillmentCancel": FULFILLMENT_CANCEL,
    "OrderCancel": ORDER_CANCEL,
    "OrderCapture": ORDER_CAPTURE,
    "OrderMarkAsPaid": ORDER_MARK_AS_PAID,
    "OrderDelete": ORDER_DELETE,
    "FulfillmentOrderMove": FULFILLMENT_ORDER_MOVE,
    "TagsAdd": TAGS_ADD,
    "WebhookSubscriptions": WEBHOOK_SUBSCRIPTIONS,
    "WebhookSubscriptionCreate": WEBHOOK_SUBSCRIPTION_CREATE,
    "WebhookSubscriptionDelete": WEBHOOK_SUBSCRIPTION_DELETE,
}

# Access scopes the documents above need (docs/operations.md lists them). `check` lists any the installation lacks.
REQUIRED_SCOPES = (
    "read_orders",
    "write_orders",
    "read_merchant_managed_fulfillment_orders",
    "write_merchant_managed_fulfillment_orders",
    "read_third_party_fulfillment_orders",
    "write_third_party_fulfillment_orders",
)
