-- Plain GET, keep-alive.
wrk.method = "GET"
