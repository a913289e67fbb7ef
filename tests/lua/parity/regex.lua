-- ngx.re: the same patterns give the same answers in both dialects
local m = ngx.re.match("hello 1234 world", [[(?<word>[a-z]+) (\d+)]], "jo")
local from, to = ngx.re.find("abc123def", [[\d+]])
local s1, n1 = ngx.re.gsub("a1b22c333", [[\d+]], "<$0>")
local s2, n2 = ngx.re.sub("Hello", "l", "L")
local s3 = ngx.re.gsub("a-b-c", "-", function(c) return "+" .. c[0] end)
local words = {}
for w in ngx.re.gmatch("one two three", [[\w+]]) do words[#words + 1] = w[0] end
ngx.say(m[0], "|", m[1], "|", m[2], "|", m.word, "|", from, "-", to, "|", s1, n1, "|", s2, n2, "|", s3, "|",
        table.concat(words, ","), "|", tostring(ngx.re.match("ABC", "abc", "i")[0]), "|",
        tostring(ngx.re.match("xabc", "abc", "a")))
ngx.exit(ngx.HTTP_OK)
