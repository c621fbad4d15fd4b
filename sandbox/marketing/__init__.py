"""The marketing-automation stand-in: Marketo's REST API shape (identity, leads, activities, programs,
Bulk Extract).

Responses and errors follow Marketo's public reference (developer.adobe.com/marketo-apis and the
Marketo developer guides on experienceleague.adobe.com), so that Marketo's own SDK and Handoff's
pipeline cannot tell the difference for the endpoints served here. Marketo's habits that clients
must survive are reproduced on purpose:

- errors come inside HTTP 200 bodies (``success: false``, codes as strings); only the identity
  endpoint answers bad credentials with HTTP 401;
- access tokens expire after ``Limits.marketing_token_ttl_s``; asking again while one is live hands
  out the same token with its remaining lifetime;
- 100 calls per 20 s (606), 10 calls in flight (615) and a daily quota that resets at midnight US
  Central time (607), all scaled by the ``pressure`` fault; calls answered with an error are not
  counted, as Marketo documents;
- an activity page scans ``batchSize`` activities of every type and stops at the end of a calendar
  month (a storage partition), so pages can be short or empty while ``moreResult`` is true, and a
  page without activities has no ``result`` member at all;
- the asset API writes its dates as ``2015-11-18T15:25:35Z+0000``.

Data shared with whoever writes a dataset (in ``schema``): ``LEAD_FIELDS`` (the ids and display
names a "Change Data Value" activity refers to) and ``ACTIVITY_TYPES``; a deleted lead is listed by
``deletedleads.json`` through its "Delete Lead" activity.

What Marketo defines is in ``schema``, the records in ``store``, a call's parameters and paging
tokens in ``params``, access tokens in ``tokens``, the call budgets in ``limits``, the gate every
call passes in ``stand_in``, Bulk Extract's jobs, queue and files in ``bulk``, and the REST and bulk
resources in ``routes``.
"""

from sandbox.marketing.routes import invalid_request_response, marketing_router
from sandbox.marketing.schema import LEAD_FIELDS_BY_NAME
from sandbox.marketing.stand_in import MarketingStandIn

__all__ = ["LEAD_FIELDS_BY_NAME", "MarketingStandIn", "invalid_request_response", "marketing_router"]
