-- wrk script for bench/run.sh: POST the x-www-form-urlencoded body in env FORM_BODY.
wrk.method = "POST"
wrk.body = os.getenv("FORM_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
