-- the text functions
ngx.say(ngx.md5("abc"), "|", ngx.encode_base64("hi?"), "|", ngx.decode_base64("aGk/"), "|",
        ngx.escape_uri("a b/c?d"), "|", ngx.unescape_uri("%41%20b"), "|", ngx.encode_args({ a = 1 }), "|",
        ngx.quote_sql_str("x'y"), "|", ngx.crc32_short("abc"), "|", ngx.http_time(1290079655), "|",
        ngx.cookie_time(1290079655), "|", ngx.parse_http_time("Thu, 18 Nov 2010 11:27:35 GMT"), "|",
        #ngx.md5_bin("x"), "|", #ngx.sha1_bin("x"), "|", ngx.decode_args("a=1&b=2&a=3").a[2])
ngx.exit(ngx.HTTP_OK)
